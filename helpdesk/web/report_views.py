"""The Reports page: the dashboard of docs/metrics.md for readers with the view-reports permission.

Every figure comes from helpdesk.reports.queries (the reader's scope applied there); this module
only reads the request, names the ids and lays the figures out. Bad input (a period, a filter,
a heatmap choice) answers 400, another company's or an unknown id 404, and computes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.conversations.models import Priority, Status
from helpdesk.errors import ActionError
from helpdesk.reports import queries
from helpdesk.reports.queries import Duration, Filters, Period

from .decorators import employee_required

FILTER_NAMES = ("team", "channel", "agent", "role", "priority")
# At most this many conversations are listed for one heatmap cell (newest activity first).
CELL_LIST_LIMIT = 200
PERIOD_CHOICES = [
    ("today", gettext_lazy("Today")),
    ("7d", gettext_lazy("Last 7 days")),
    ("30d", gettext_lazy("Last 30 days")),
    ("6m", gettext_lazy("Last 6 months")),
    ("1y", gettext_lazy("Last year")),
    ("custom", gettext_lazy("Custom range")),
]
METRIC_CHOICES = [
    ("new_conversations", gettext_lazy("New conversations")),
    ("customer_messages", gettext_lazy("Customer messages")),
    ("active_conversations", gettext_lazy("Active conversations")),
]
MODE_CHOICES = [("total", gettext_lazy("Total")), ("average", gettext_lazy("Average per occurrence"))]


def WEEKDAYS_SHORT() -> list[str]:
    return [_("Mon"), _("Tue"), _("Wed"), _("Thu"), _("Fri"), _("Sat"), _("Sun")]


class BadReportInput(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Inputs:
    period: Period
    filters: Filters
    metric: str
    mode: str


def parse_inputs(request: HttpRequest) -> Inputs:
    """The period, filters and heatmap choice of the query string, or BadReportInput."""
    employee = request.employee
    get = request.GET
    try:
        period = Period.parse(
            employee.company, get.get("period") or "7d", start=get.get("start") or None, end=get.get("end") or None
        )
        filters = Filters.parse(employee, **{name: get[name] for name in FILTER_NAMES if name in get})
        metric = get.get("metric") or "new_conversations"
        mode = get.get("mode") or "total"
        if metric not in queries.HEATMAP_METRICS:
            raise ActionError(_("Unknown heatmap metric."), code="bad_metric", field="metric")
        if mode not in queries.HEATMAP_MODES:
            raise ActionError(_("Unknown heatmap mode."), code="bad_mode", field="mode")
    except ActionError as error:
        raise BadReportInput(str(error), 400) from None
    except Http404:
        raise BadReportInput(
            _("That team, channel, agent or role does not exist in your company. Choose one from the list."), 404
        ) from None
    return Inputs(period, filters, metric, mode)


def _choices(employee) -> dict[str, list]:
    """The filters' options: the reader's company only; archived roles and removed channels marked."""
    archived = _("archived")
    return {
        "teams": [(t.pk, t.name) for t in access.company_teams(employee).order_by("name", "pk")],
        # Removed channels keep their history, as in the statistics' own filter (queries.Filters).
        "channels": [(c.pk, _channel_label(c)) for c in queries.readable_channels(employee).order_by("name", "pk")],
        "agents": [
            (e.pk, e.display_name if e.is_active else f"{e.display_name} ({_('deactivated')})")
            for e in access.company_employees(employee).order_by("display_name", "pk")
        ],
        "roles": [
            (r.pk, f"{r.label} ({archived})" if r.archived else str(r.label))
            for r in access.company_roles(employee).order_by("archived_at", "name", "pk")
        ],
        "priorities": [(value, str(label)) for value, label in Priority.choices],
    }


def _channel_label(channel) -> str:
    return f"{channel.name} ({_('removed')})" if channel.removed_at else channel.name


def _names(employee) -> dict[str, dict[int, str]]:
    return {
        "agent": {e.pk: e.display_name for e in access.company_employees(employee)},
        "team": {t.pk: t.name for t in access.company_teams(employee)},
        "channel": {c.pk: _channel_label(c) for c in queries.readable_channels(employee)},
    }


def _none_label(kind: str) -> str:
    return {"agent": _("Unassigned"), "team": _("No team"), "channel": _("No channel")}[kind]


def heat_levels(cells) -> list[list[dict[str, Any]]]:
    """Each cell's value and a colour level 0 to 5 (a CSS class: no inline style under the CSP)."""
    values = [v for row in cells for v in row if v]
    top = max(values, default=0)
    grid = []
    for row in cells:
        grid.append(
            [
                {
                    "hour": h,
                    "value": v,
                    "level": (math.ceil(v / top * 5) if top and v else 0) if v is not None else None,
                }
                for h, v in enumerate(row)
            ]
        )
    return grid


def _live_by(employee, field: str) -> dict[int, dict[str, int]]:
    """Open and snoozed conversations now per team or channel, in the reader's scope."""
    rows: dict[int, dict[str, int]] = {}
    visible = access.visible_conversations(employee).filter(status__in=[Status.OPEN, Status.SNOOZED])
    for row in visible.values(field, "status").order_by().annotate(n=Count("pk")):
        rows.setdefault(row[field] or 0, {"open": 0, "snoozed": 0})[row["status"]] = row["n"]
    return rows


def _workload(employee, dashboard, live) -> dict[str, list[dict[str, Any]]]:
    names = _names(employee)
    period_rows: dict[str, dict[int, queries.WorkloadRow]] = {"agent": {}, "team": {}, "channel": {}}
    for row in dashboard.workload:
        period_rows[row.kind][row.id] = row
    empty = Duration(0, None, None, None)

    def line(kind, key, live_figures):
        row = period_rows[kind].get(key)
        return {
            "id": key,
            "name": names[kind].get(key) or _none_label(kind),
            "resolved": row.resolved if row else 0,
            "replies": row.replies if row else 0,
            "first_response": row.first_response if row else empty,
            "ratings": row.ratings if row else 0,
            "csat": row.csat if row else None,
            **live_figures,
        }

    agents = []
    live_agents = {a.id: a for a in live.agents}
    for key in [a.id for a in live.agents] + sorted(set(period_rows["agent"]) - set(live_agents)):
        a = live_agents.get(key)
        figures = (
            {"presence": a.presence, "open": a.open, "snoozed": a.snoozed, "capacity": a.capacity, "live": True}
            if a
            else {"live": False}
        )
        agents.append(line("agent", key, figures))
    result = {"agent": agents}
    for kind, field in (("team", "team_id"), ("channel", "channel_id")):
        now = _live_by(employee, field)
        keys = sorted(set(period_rows[kind]) | set(now), key=lambda k: (names[kind].get(k) or "", k))
        result[kind] = [line(kind, k, {**{"open": 0, "snoozed": 0}, **now.get(k, {}), "live": True}) for k in keys]
    return result


def _chart_data(dashboard) -> dict[str, Any]:
    return {
        "by_hour": {
            "hours": [p.hour for p in dashboard.by_hour],
            "customer_messages": [p.customer_messages for p in dashboard.by_hour],
            "replies": [p.replies for p in dashboard.by_hour],
            "frt_median": [p.first_response.median for p in dashboard.by_hour],
            "frt_average": [p.first_response.average for p in dashboard.by_hour],
        },
        "by_day": {
            "days": [p.day.isoformat() for p in dashboard.by_day],
            "opened": [p.opened for p in dashboard.by_day],
            "resolved": [p.resolved for p in dashboard.by_day],
            "customer_messages": [p.customer_messages for p in dashboard.by_day],
            "replies": [p.replies for p in dashboard.by_day],
        },
        "labels": {
            "customer_messages": _("Customer messages"),
            "replies": _("Replies"),
            "opened": _("Opened"),
            "resolved": _("Resolved"),
            "frt_median": _("First response, median (min)"),
            "frt_average": _("First response, average (min)"),
            "count": _("Count"),
            "minutes": _("Minutes"),
            "showTable": _("Show as table"),
            "showChart": _("Show as chart"),
        },
    }


TILES = [
    # (tile key, label, kind): kind "count", "duration" or "percent".
    ("opened", gettext_lazy("Conversations opened"), "count"),
    ("resolved", gettext_lazy("Conversations resolved"), "count"),
    ("customer_messages", gettext_lazy("Customer messages"), "count"),
    ("replies", gettext_lazy("Replies sent"), "count"),
    ("unread_now", gettext_lazy("Unread now"), "count"),
    ("contacts", gettext_lazy("Contacts"), "count"),
    ("csat", gettext_lazy("CSAT"), "percent"),
]
DURATION_TILES = [
    ("first_response", gettext_lazy("First response time")),
    ("resolution_first", gettext_lazy("Resolution time (first)")),
    ("resolution_last", gettext_lazy("Resolution time (last)")),
]


def _tiles(dashboard) -> dict[str, Any]:
    counts = [{"key": key, "label": label, "kind": kind, "tile": dashboard.tile(key)} for key, label, kind in TILES]
    durations = [
        {
            "key": metric,
            "label": label,
            "parts": [
                {"agg": agg, "label": agg_label, "tile": dashboard.tile(f"{metric}_{agg}")}
                for agg, agg_label in (("median", _("Median")), ("p90", _("p90")), ("average", _("Average")))
            ],
        }
        for metric, label in DURATION_TILES
    ]
    return {"counts": counts, "durations": durations}


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


@employee_required(Perm.VIEW_REPORTS)
def reports(request: HttpRequest) -> HttpResponse:
    employee = request.employee
    context: dict[str, Any] = {
        "reports_page": True,
        "choices": _choices(employee),
        "period_choices": PERIOD_CHOICES,
        "metric_choices": METRIC_CHOICES,
        "mode_choices": MODE_CHOICES,
        "selected": {name: request.GET.get(name, "") for name in (*FILTER_NAMES, "start", "end")},
        "period_value": request.GET.get("period") or "7d",
        "error": None,
    }
    try:
        inputs = parse_inputs(request)
    except BadReportInput as error:
        context["error"] = str(error)
        return render(request, "web/reports/page.html", context, status=error.status)
    dashboard = queries.dashboard(employee, inputs.period, inputs.filters)
    heatmap = queries.heatmap(employee, inputs.period, inputs.filters, inputs.metric, inputs.mode)
    live = queries.live(employee)
    context.update(
        {
            "inputs": inputs,
            "period": inputs.period,
            "dashboard": dashboard,
            "tiles": _tiles(dashboard),
            "heatmap": list(zip(WEEKDAYS_SHORT(), heat_levels(heatmap.cells), strict=True)),
            "hours": range(24),
            "live": live,
            "waiting_total": sum(q.waiting for q in live.queues),
            "workload": _workload(employee, dashboard, live),
            "chart_data": _chart_data(dashboard),
            "cell_query": _query_without(request, "weekday", "hour"),
            "exports": _export_links(request) if employee.can(Perm.EXPORT) else [],
        }
    )
    return render(request, "web/reports/page.html", context)


# The CSV downloads of the page's figures (helpdesk/api/exports.py), for readers who may export.
EXPORTS = [
    ("api:report-tiles-csv", gettext_lazy("Figures"), "period"),
    ("api:report-by-hour-csv", gettext_lazy("By hour of day"), "period"),
    ("api:report-by-day-csv", gettext_lazy("By day"), "period"),
    ("api:report-heatmap-csv", gettext_lazy("Weekday × hour"), "heatmap"),
    ("api:report-workload-agents-csv", gettext_lazy("Workload per agent"), "period"),
    ("api:report-workload-teams-csv", gettext_lazy("Per team"), "period"),
    ("api:report-workload-channels-csv", gettext_lazy("Per channel"), "period"),
    ("api:report-live-queues-csv", gettext_lazy("Live queue"), "now"),  # now: no period, no filters
]


def _export_links(request: HttpRequest) -> list[tuple[str, str]]:
    """Each CSV with the page's own period and filters (and, for the heatmap, its metric and mode)."""
    shared = ("period", "start", "end", *FILTER_NAMES)
    kept = {"period": shared, "heatmap": (*shared, "metric", "mode"), "now": ()}
    links = []
    for name, label, kind in EXPORTS:
        keep = kept[kind]
        query = QueryDict(mutable=True)
        for key in keep:
            if request.GET.get(key) and not (key == "period" and request.GET[key] == "custom"):
                query[key] = request.GET[key]  # a custom range is its start and end alone
        url = reverse(name)
        links.append((label, f"{url}?{query.urlencode()}" if query else url))
    return links


@employee_required(Perm.VIEW_REPORTS)
def heatmap_cell(request: HttpRequest) -> HttpResponse:
    """The conversations behind one heatmap cell, through the inbox's gate, each linked to the inbox."""
    employee = request.employee
    context: dict[str, Any] = {
        "reports_page": True,
        "error": None,
        "back_query": _query_without(request, "weekday", "hour"),
    }
    try:
        inputs = parse_inputs(request)
        weekday, hour = request.GET.get("weekday", ""), request.GET.get("hour", "")
        if not (weekday.isascii() and weekday.isdigit() and hour.isascii() and hour.isdigit()):
            raise BadReportInput(_("No such heatmap cell."), 400)
        try:
            conversations = queries.heatmap_cell(
                employee, inputs.period, inputs.filters, inputs.metric, int(weekday), int(hour)
            )
        except ActionError as error:
            raise BadReportInput(str(error), 400) from None
    except BadReportInput as error:
        context["error"] = str(error)
        return render(request, "web/reports/cell.html", context, status=error.status)
    rows = list(conversations.select_related("contact", "assignee", "team", "channel")[: CELL_LIST_LIMIT + 1])
    context.update(
        {
            "inputs": inputs,
            "period": inputs.period,
            "metric_label": dict(METRIC_CHOICES)[inputs.metric],
            "weekday_label": [
                _("Monday"),
                _("Tuesday"),
                _("Wednesday"),
                _("Thursday"),
                _("Friday"),
                _("Saturday"),
                _("Sunday"),
            ][int(weekday)],
            "hour": int(hour),
            "conversations": rows[:CELL_LIST_LIMIT],
            "more": len(rows) > CELL_LIST_LIMIT,
            "limit": CELL_LIST_LIMIT,
        }
    )
    return render(request, "web/reports/cell.html", context)


@employee_required(Perm.VIEW_REPORTS)
def live_block(request: HttpRequest) -> HttpResponse:
    """The live queue block alone: the page fetches it when its socket says something changed."""
    live = queries.live(request.employee)
    return render(
        request, "web/reports/_live.html", {"live": live, "waiting_total": sum(q.waiting for q in live.queues)}
    )
