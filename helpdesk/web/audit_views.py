"""The audit log page: who changed what and when, filtered, paginated and exported as CSV."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from typing import Any

import django_filters
from django import forms
from django.core.paginator import Paginator
from django.db.models import BooleanField, Case, CharField, Q, QuerySet, Value, When
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from helpdesk import csvexport
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.events.models import AuditEntry

from .decorators import employee_required

PAGE_SIZE = 50
VALUE_LIMIT = 120

# What each action code means, in words; a code missing here is shown as it is.
ACTION_LABELS = {
    "signin.succeeded": gettext_lazy("Signed in"),
    "signin.failed": gettext_lazy("Failed sign-in"),
    "role.created": gettext_lazy("Role created"),
    "role.updated": gettext_lazy("Role changed"),
    "role.archived": gettext_lazy("Role archived"),
    "role.unarchived": gettext_lazy("Role taken out of the archive"),
    "employee.added": gettext_lazy("Employee added"),
    "employee.updated": gettext_lazy("Employee changed"),
    "employee.deactivated": gettext_lazy("Employee deactivated"),
    "employee.reactivated": gettext_lazy("Employee reactivated"),
    "employee.password_link_sent": gettext_lazy("Password link sent"),
    "employee.2fa_enabled": gettext_lazy("Two-factor sign-in turned on"),
    "employee.2fa_disabled": gettext_lazy("Two-factor sign-in turned off"),
    "team.created": gettext_lazy("Team created"),
    "team.updated": gettext_lazy("Team changed"),
    "company.created": gettext_lazy("Company created"),
    "company.updated": gettext_lazy("Company settings changed"),
    "company.logo_changed": gettext_lazy("Company logo changed"),
    "channel.added": gettext_lazy("Channel added"),
    "channel.updated": gettext_lazy("Channel settings changed"),
    "channel.disabled": gettext_lazy("Channel disabled"),
    "channel.enabled": gettext_lazy("Channel enabled"),
    "channel.removed": gettext_lazy("Channel removed"),
    "channel.polling_stopped": gettext_lazy("Channel stopped: the provider refused its credentials"),
    "channel.broken": gettext_lazy("Channel broken: the provider refused its credentials"),
    "api_token.created": gettext_lazy("API token created"),
    "api_token.revoked": gettext_lazy("API token revoked"),
    "contact.updated": gettext_lazy("Contact changed"),
    "contact.blocked": gettext_lazy("Contact blocked"),
    "contact.unblocked": gettext_lazy("Contact unblocked"),
    "canned_response.created": gettext_lazy("Canned response added"),
    "canned_response.updated": gettext_lazy("Canned response changed"),
    "canned_response.archived": gettext_lazy("Canned response archived"),
    "quick_answer.created": gettext_lazy("Quick answer added"),
    "quick_answer.updated": gettext_lazy("Quick answer changed"),
    "quick_answer.archived": gettext_lazy("Quick answer archived"),
    "message.deleted": gettext_lazy("Message deleted"),
    "message.restored": gettext_lazy("Message restored"),
    "conversation.deleted": gettext_lazy("Conversation deleted"),
    "conversation.restored": gettext_lazy("Conversation restored"),
}

# AuditEntry.object_type holds the model's name.
OBJECT_TYPE_LABELS = {
    "employee": gettext_lazy("Employee"),
    "role": gettext_lazy("Role"),
    "team": gettext_lazy("Team"),
    "company": gettext_lazy("Company"),
    "channel": gettext_lazy("Channel"),
    "apitoken": gettext_lazy("API token"),
    "conversation": gettext_lazy("Conversation"),
    "contact": gettext_lazy("Contact"),
    "message": pgettext_lazy("chat message", "Message"),
    "cannedresponse": gettext_lazy("Canned response"),
    "quickanswer": gettext_lazy("Quick answer"),
}


def action_label(code: str) -> str:
    return str(ACTION_LABELS.get(code, code))


def object_type_label(code: str) -> str:
    return str(OBJECT_TYPE_LABELS.get(code, code))


# --- Filters ----------------------------------------------------------------------------------------


def _sorted_choices(labels: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(((code, str(label)) for code, label in labels.items()), key=lambda choice: choice[1].lower())


def _company_actors(request: HttpRequest) -> QuerySet:
    # Only the viewer's own colleagues: another company's employee id is "not a valid choice".
    return access.company_employees(request.employee).order_by("display_name")


def _day_start(day: date) -> datetime:
    """Midnight of ``day`` in the company's time zone (the middleware made it current)."""
    return timezone.make_aware(datetime.combine(day, time.min))


class AuditLogForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name in ("date_from", "date_to"):
            if data.get(name):
                try:  # years at the very edge of the calendar can't be converted to UTC
                    _day_start(data[name]).astimezone(UTC)
                except (OverflowError, ValueError):
                    self.add_error(name, _("Enter a date between the years 1900 and 9000."))
                    data.pop(name, None)
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", _("The end date is before the start date."))
        return data


class AuditLogFilter(django_filters.FilterSet):
    action = django_filters.ChoiceFilter(
        label=gettext_lazy("Action"), choices=lambda: _sorted_choices(ACTION_LABELS), empty_label=gettext_lazy("Any")
    )
    actor = django_filters.ModelChoiceFilter(
        label=gettext_lazy("Who"), queryset=_company_actors, empty_label=gettext_lazy("Anyone")
    )
    object_type = django_filters.ChoiceFilter(
        label=gettext_lazy("Object type"),
        choices=lambda: _sorted_choices(OBJECT_TYPE_LABELS),
        empty_label=gettext_lazy("Any"),
    )
    date_from = django_filters.DateFilter(
        label=gettext_lazy("From"), method="filter_date_from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = django_filters.DateFilter(
        label=gettext_lazy("To"), method="filter_date_to", widget=forms.DateInput(attrs={"type": "date"})
    )
    q = django_filters.CharFilter(label=gettext_lazy("Object"), method="filter_object", max_length=200)

    class Meta:
        model = AuditEntry
        fields: list[str] = []
        form = AuditLogForm

    def filter_date_from(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        return queryset.filter(created_at__gte=_day_start(value))

    def filter_date_to(self, queryset: QuerySet, name: str, value: date) -> QuerySet:
        # The whole last day counts, in the company's time zone.
        return queryset.filter(created_at__lte=timezone.make_aware(datetime.combine(value, time.max)))

    def filter_object(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        # A name is searched only where the reader may see it (see ``unseen_by``).
        return queryset.filter(Q(object_repr__icontains=value, unseen=False) | Q(object_id=value))


def unseen_by(employee) -> Q:
    """Rows about a contact or a conversation this reader may not see now, asked of the one gate.

    Their copied names and values are contact data (a contact's name, e-mail, phone, block
    reason; a conversation is named after its contact): the audit log must not become a side
    door around the reader's scope. Such rows show only the object's id.
    """

    def keys(qs: QuerySet) -> QuerySet:
        return qs.annotate(key=Cast("pk", CharField())).values("key")

    contacts = keys(access.visible_contacts(employee))
    conversations = keys(access.visible_conversations(employee, include_deleted=True))
    return Q(object_type="contact") & ~Q(object_id__in=contacts) | (
        Q(object_type="conversation") & ~Q(object_id__in=conversations)
    )


def filtered_entries(request: HttpRequest) -> tuple[AuditLogFilter, QuerySet[AuditEntry]]:
    """The filter form and the employee's company's rows it selects, newest first.

    Invalid filter values select nothing (the form shows why): an export must never hand
    out more than was asked for because one field was mistyped. Each row carries
    ``unseen``: its object's details are not for this reader (:func:`as_shown`).
    """
    entries = (
        AuditEntry.objects.filter(company_id=request.employee.company_id)
        .annotate(
            unseen=Case(When(unseen_by(request.employee), then=Value(True)), default=False, output_field=BooleanField())
        )
        .order_by("-id")
    )
    params = request.GET.copy()
    params.pop("page", None)
    filters = AuditLogFilter(params or None, queryset=entries, request=request)
    if filters.is_bound and not filters.is_valid():
        return filters, entries.none()
    return filters, filters.qs


# --- Showing values -----------------------------------------------------------------------------------


def as_shown(entry: AuditEntry) -> AuditEntry:
    """The row as this reader may see it: of an object they may not see, its id and changed keys only."""
    if getattr(entry, "unseen", False):
        hidden = _("(hidden)")
        entry.object_repr = f"#{entry.object_id}"
        entry.before = dict.fromkeys(entry.before or {}, hidden)
        entry.after = dict.fromkeys(entry.after or {}, hidden)
    return entry


def _short(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list | tuple):
        text = ", ".join(_short(item) for item in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "…"


def changes(entry: AuditEntry) -> list[dict[str, str | None]]:
    """Each changed key with its value before and after (``None`` where there was none).

    Two lists (a role's permissions) are shown as what was added and what was removed.
    """
    before, after = entry.before or {}, entry.after or {}
    out = []
    for key in dict.fromkeys([*before, *after]):
        old, new = before.get(key), after.get(key)
        if isinstance(old, list) and isinstance(new, list):
            added = [f"+{item}" for item in new if item not in old]
            removed = [f"−{item}" for item in old if item not in new]
            out.append({"key": key, "before": None, "after": _short(added + removed)})
            continue
        out.append(
            {
                "key": key,
                "before": _short(old) if key in before else None,
                "after": _short(new) if key in after else None,
            }
        )
    return out


# --- Pages ------------------------------------------------------------------------------------------------


@employee_required(Perm.VIEW_AUDIT_LOG)
def audit_log(request: HttpRequest) -> HttpResponse:
    filters, entries = filtered_entries(request)
    return _page(request, filters, entries)


def _page(request: HttpRequest, filters: AuditLogFilter, entries: QuerySet[AuditEntry]) -> HttpResponse:
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "entry": entry,
            "action": action_label(entry.action),
            "object_type": object_type_label(entry.object_type),
            "changes": changes(entry),
        }
        for entry in map(as_shown, page)
    ]
    return render(
        request,
        "web/settings/audit_log.html",
        {"filters": filters, "page": page, "rows": rows, "settings_page": True, "section": "web:audit-log"},
    )


@employee_required(Perm.VIEW_AUDIT_LOG)
def audit_log_export(request: HttpRequest) -> HttpResponse:
    """The rows the same filters select, as a CSV file that opens in Excel (UTF-8 with a BOM)."""
    filters, entries = filtered_entries(request)
    if filters.is_bound and not filters.is_valid():
        return _page(request, filters, entries)
    # Words and the time zone are fixed now: the rows are written after this view returns.
    header = [_("Time"), _("Who"), _("Action"), _("Action code"), _("Object type"), _("Object ID"), _("Object")]
    header += [_("Before"), _("After"), _("IP address")]
    labels = {code: str(label) for code, label in ACTION_LABELS.items()}
    types = {code: str(label) for code, label in OBJECT_TYPE_LABELS.items()}
    tz = timezone.get_current_timezone()
    rows = entries.only(
        "created_at", "actor_name", "action", "object_type", "object_id", "object_repr", "before", "after", "ip"
    )
    return csvexport.stream(
        request,
        header=header,
        rows=rows,
        line=lambda entry: _csv_row(as_shown(entry), labels, types, tz),
        filename=f"audit-log-{timezone.localdate():%Y-%m-%d}.csv",
    )


def _csv_row(entry: AuditEntry, labels: dict[str, str], types: dict[str, str], tz) -> list[str]:
    def as_json(value: dict) -> str:
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""

    values = [
        timezone.localtime(entry.created_at, tz).isoformat(sep=" ", timespec="seconds"),
        entry.actor_name,
        labels.get(entry.action, entry.action),
        entry.action,
        types.get(entry.object_type, entry.object_type),
        entry.object_id,
        entry.object_repr,
        as_json(entry.before),
        as_json(entry.after),
        entry.ip or "",
    ]
    return values  # csvexport makes each cell formula-safe
