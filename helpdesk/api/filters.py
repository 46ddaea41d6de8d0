"""Query-string filters (django-filter). A value that doesn't parse is a 400, never ignored."""

from __future__ import annotations

import re

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from helpdesk.conversations import queries
from helpdesk.conversations.models import Conversation, Priority, Status


@extend_schema_field({"type": "boolean"})
class BoolFilter(django_filters.TypedChoiceFilter):
    """``true`` or ``false``; anything else is refused (django-filter's own would ignore it)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(*args, **kwargs)


class WholeNumberField(forms.IntegerField):
    """Digits only: Django's IntegerField also takes "30.0" (and the schema says integer)."""

    def to_python(self, value):
        if value not in self.empty_values and not re.fullmatch(r"-?[0-9]+", str(value).strip()):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A whole number (django-filter's NumberFilter would take 1.5 as well)."""

    field_class = WholeNumberField


class StrictFilterSet(django_filters.FilterSet):
    """A choice, number or true/false parameter that is present but blank (``?status=``) is a 400.

    django-filter would skip it as "not given", so a typo'd or emptied value silently widened
    the list. Free-text parameters (``search``) may still be blank.
    """

    def is_valid(self) -> bool:
        valid = super().is_valid()
        for name, query_filter in self.filters.items():
            if isinstance(query_filter, django_filters.CharFilter) or self.data.get(name, None) != "":
                continue
            if name not in self.form.errors:
                self.form.add_error(name, _("This field may not be blank."))
            valid = False
        return valid


class ConversationFilter(StrictFilterSet):
    # The first two keep the inbox's defaults: without them, "my open conversations".
    DEFAULTS = {"view": "mine", "status": Status.OPEN}

    view = django_filters.ChoiceFilter(
        choices=[(view, view) for view in queries.VIEWS],
        method="filter_view",
        help_text=_("mine (the default), unassigned, all, or mentions (of you or your teams): the inbox view to list."),
    )
    status = django_filters.ChoiceFilter(choices=Status.choices, help_text=_("The default is open."))
    assignee_id = IdFilter(field_name="assignee_id", help_text=_("Combine with view=all."))
    team_id = IdFilter(field_name="team_id")
    channel_id = IdFilter(field_name="channel_id")
    priority = django_filters.TypedChoiceFilter(choices=Priority.choices, coerce=int)
    ordering = django_filters.ChoiceFilter(
        choices=[(key, key) for key in queries.ORDERINGS],
        method="filter_ordering",
        help_text=_("newest (the default: latest activity first) or priority (highest first, then waiting longest)."),
    )

    class Meta:
        model = Conversation
        fields = ["view", "status", "assignee_id", "team_id", "channel_id", "priority", "ordering"]

    def __init__(self, data: QueryDict | None = None, *args, **kwargs):
        data = data.copy() if data is not None else QueryDict(mutable=True)
        for name, default in self.DEFAULTS.items():
            data.setdefault(name, default)
        super().__init__(data, *args, **kwargs)

    def filter_view(self, queryset, name, value):
        teams = getattr(self.request, "inbox_team_ids", None)  # the list view read them for its gate
        rows = queries.in_view(queryset, self.request.user.employee, value, teams=teams)
        return rows.order_by("-last_mention_message_id", "-pk") if value == "mentions" else rows

    def filter_ordering(self, queryset, name, value):
        # Asked for explicitly, an order replaces the view's own (the Mentions view's newest mention first).
        return queryset.order_by(*queries.ORDERINGS[value])
