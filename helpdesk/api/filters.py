"""Query-string filters (django-filter). A value that doesn't parse is a 400, never ignored."""

from __future__ import annotations

import django_filters
from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from helpdesk.conversations import queries
from helpdesk.conversations.models import Conversation, Priority, Status


class BoolFilter(django_filters.TypedChoiceFilter):
    """``true`` or ``false``; anything else is refused (django-filter's own would ignore it)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("choices", [("true", "true"), ("false", "false")])
        kwargs.setdefault("coerce", lambda value: value == "true")
        super().__init__(*args, **kwargs)


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(django_filters.NumberFilter):
    """A whole number (django-filter's NumberFilter would take 1.5 as well)."""

    field_class = forms.IntegerField


class ConversationFilter(django_filters.FilterSet):
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
        rows = queries.in_view(queryset, self.request.user.employee, value)
        return rows.order_by("-last_mention_message_id", "-pk") if value == "mentions" else rows

    def filter_ordering(self, queryset, name, value):
        # Asked for explicitly, an order replaces the view's own (the Mentions view's newest mention first).
        return queryset.order_by(*queries.ORDERINGS[value])
