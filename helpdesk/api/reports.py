"""Statistics for BI tools: the dashboard, the heatmap and its cells, the live queue (docs/metrics.md).

Thin views over helpdesk/reports/queries.py: the reader's scope narrows every figure there.
Everything the request names is checked before anything is computed: a bad period or value is
a 400, another company's (or no such) team, channel, agent or role a 404, an unknown query
parameter a 400. The CSV files of the same tables are in exports.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts.models import Employee, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.conversations import queries as conversation_queries
from helpdesk.conversations.models import Channel, Conversation, Priority
from helpdesk.errors import ActionError
from helpdesk.reports import queries
from helpdesk.reports.queries import DURATION_METRICS, HEATMAP_METRICS, HEATMAP_MODES, PRESETS, Filters, Period

from .common import GatedListApi, me
from .schema import errors
from .serializers import ConversationRowOut

TAGS = ["reports"]
MAX_ID = 2**63 - 1
FILTERS = ("team", "channel", "agent", "role", "priority")
# Dates far outside any history would overflow the conversion to UTC (or the previous period).
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9000, 12, 31)


# --- Input ---------------------------------------------------------------------------------------


def _id(help_text) -> serializers.IntegerField:
    return serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text=help_text)


class ReportQuery(serializers.Serializer):
    period = serializers.ChoiceField(
        choices=[*PRESETS, "custom"],
        required=False,
        help_text=gettext_lazy(
            "today, 7d, 30d, 6m (180 days), 1y (365 days): whole days in the company's time zone, today "
            "included; or custom with start and end. Without it: custom if start or end is given, else 7d."
        ),
    )
    start = serializers.DateField(
        required=False,
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
        help_text=gettext_lazy("A custom range's first day (YYYY-MM-DD, included)."),
    )
    end = serializers.DateField(
        required=False,
        validators=[MinValueValidator(FIRST_DAY), MaxValueValidator(LAST_DAY)],
        help_text=gettext_lazy(
            "A custom range's last day (included). Not before start; at most 400 days in all (400, "
            "codes range_reversed and range_too_long)."
        ),
    )
    team = _id(gettext_lazy("Only facts credited to this team (another company's: 404)."))
    channel = _id(gettext_lazy("Only this channel (removed channels keep their history)."))
    agent = _id(gettext_lazy("Only facts credited to this employee (the one who did the work)."))
    role = _id(gettext_lazy("Only facts of employees holding this role at the time (archived roles too)."))
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)


class HeatmapQuery(ReportQuery):
    metric = serializers.ChoiceField(choices=HEATMAP_METRICS, required=False, default="new_conversations")
    mode = serializers.ChoiceField(
        choices=HEATMAP_MODES,
        required=False,
        default="total",
        help_text=gettext_lazy("total, or average per occurrence of that weekday and hour in the period."),
    )


class CellQuery(ReportQuery):
    metric = serializers.ChoiceField(choices=HEATMAP_METRICS, required=False, default="new_conversations")
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text=gettext_lazy("0 is Monday."))
    hour = serializers.IntegerField(min_value=0, max_value=23, help_text=gettext_lazy("The local hour, 0–23."))


@dataclass(frozen=True)
class Asked:
    """A report request, checked: who reads, the period, the filters and the rest of the input."""

    reader: Employee
    period: Period
    filters: Filters
    data: dict


def asked(request, query: type[serializers.Serializer], *, perms=(Perm.VIEW_REPORTS,), extra=()) -> Asked:
    """The reader's right first, then every parameter: nothing is computed from a bad request."""
    reader = me(request)
    for perm in perms:
        access.require(reader, perm)
    params = request.query_params
    unknown = sorted(set(params) - set(query().fields) - set(extra))
    if unknown:
        raise ActionError(_("Unknown filter: %(name)s.") % {"name": unknown[0]}, code="bad_filter")
    serializer = query(data=params.dict())
    serializer.is_valid(raise_exception=True)
    data = serializer.validated_data
    preset = data.get("period") or ("custom" if "start" in data or "end" in data else "7d")
    if preset != "custom" and ("start" in data or "end" in data):
        raise ActionError(_("A start and an end go with period=custom."), code="bad_range", field="start")
    period = Period.parse(reader.company, preset, start=data.get("start"), end=data.get("end"))
    filters = Filters.parse(reader, **{name: data[name] for name in FILTERS if name in data})
    return Asked(reader, period, filters, data)


def live_reader(request, perms=(Perm.VIEW_REPORTS,)) -> Employee:
    """The reader of a live figure: it takes no parameters (it is now, for the reader's scope)."""
    reader = me(request)
    for perm in perms:
        access.require(reader, perm)
    if request.query_params:
        name = sorted(request.query_params)[0]
        raise ActionError(_("Unknown filter: %(name)s.") % {"name": name}, code="bad_filter")
    return reader


# --- Output ----------------------------------------------------------------------------------------


def duration_data(d: queries.Duration) -> dict:
    return {"count": d.count, "median": d.median, "p90": d.p90, "average": d.average}


def period_data(period: Period) -> dict:
    previous = period.previous
    return {
        "preset": period.preset,
        "start": period.first,
        "end": period.last,
        "days": period.days,
        "previous_start": previous.first,
        "previous_end": previous.last,
        "timezone": period.tz,
    }


def filters_data(filters: Filters) -> dict:
    return {
        "team": filters.team_id,
        "channel": filters.channel_id,
        "agent": filters.agent_id,
        "role": filters.role_id,
        "priority": filters.priority,
    }


def names(reader: Employee, kind: str, ids) -> dict[int, str]:
    """The names of the reader's company's agents, teams or channels (removed channels too)."""
    model = {"agent": Employee, "team": Team, "channel": Channel}[kind]
    field = "display_name" if kind == "agent" else "name"
    rows = model.objects.filter(company_id=reader.company_id, pk__in=[i for i in ids if i])
    return dict(rows.values_list("pk", field))


def workload_data(reader: Employee, board: queries.Dashboard) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for kind, key in (("agent", "agents"), ("team", "teams"), ("channel", "channels")):
        rows = [row for row in board.workload if row.kind == kind]
        known = names(reader, kind, [row.id for row in rows])
        out[key] = [
            {
                "id": row.id or None,
                "name": known.get(row.id),
                "resolved": row.resolved,
                "replies": row.replies,
                "first_response": duration_data(row.first_response),
                "ratings": row.ratings,
                "csat": row.csat,
            }
            for row in rows
        ]
    return out


def dashboard_data(reader: Employee, board: queries.Dashboard) -> dict:
    return {
        "period": period_data(board.period),
        "filters": filters_data(board.filters),
        "tiles": [
            {"key": t.key, "current": t.current, "previous": t.previous, "change": t.change} for t in board.tiles
        ],
        "durations": {
            metric: {"current": duration_data(current), "previous": duration_data(previous)}
            for metric, (current, previous) in board.durations.items()
        },
        "by_hour": [
            {
                "hour": p.hour,
                "customer_messages": p.customer_messages,
                "replies": p.replies,
                "first_response": duration_data(p.first_response),
            }
            for p in board.by_hour
        ],
        "by_day": [
            {
                "day": p.day,
                "opened": p.opened,
                "resolved": p.resolved,
                "customer_messages": p.customer_messages,
                "replies": p.replies,
            }
            for p in board.by_day
        ],
        "workload": workload_data(reader, board),
    }


def heatmap_data(asked: Asked, heat: queries.Heatmap) -> dict:
    return {
        "period": period_data(asked.period),
        "filters": filters_data(asked.filters),
        "metric": heat.metric,
        "mode": heat.mode,
        "cells": [list(row) for row in heat.cells],
        "occurrences": [list(row) for row in heat.occurrences],
    }


def live_data(now: queries.Live) -> dict:
    return {
        "queues": [
            {"team_id": q.team_id or None, "name": q.name or None, "waiting": q.waiting, "longest_wait": q.longest_wait}
            for q in now.queues
        ],
        "longest_wait": now.longest_wait,
        "online": now.online,
        "away": now.away,
        "agents": [
            {
                "id": a.id,
                "name": a.name,
                "presence": a.presence,
                "open": a.open,
                "snoozed": a.snoozed,
                "capacity": a.capacity,
            }
            for a in now.agents
        ],
    }


# The schema of the answers (the data itself is built above, as numbers, never rounded twice).
class ReportDurationOut(serializers.Serializer):
    count = serializers.IntegerField(help_text=gettext_lazy("Samples."))
    median = serializers.FloatField(allow_null=True, help_text=gettext_lazy("Seconds; null without samples."))
    p90 = serializers.FloatField(allow_null=True)
    average = serializers.FloatField(allow_null=True)


class ReportPeriodOut(serializers.Serializer):
    preset = serializers.CharField()
    start = serializers.DateField()
    end = serializers.DateField()
    days = serializers.IntegerField()
    previous_start = serializers.DateField()
    previous_end = serializers.DateField()
    timezone = serializers.CharField(help_text=gettext_lazy("The company's: days and hours are local to it."))


class ReportFiltersOut(serializers.Serializer):
    team = serializers.IntegerField(allow_null=True)
    channel = serializers.IntegerField(allow_null=True)
    agent = serializers.IntegerField(allow_null=True)
    role = serializers.IntegerField(allow_null=True)
    priority = serializers.IntegerField(allow_null=True)


class ReportTileOut(serializers.Serializer):
    key = serializers.CharField(
        help_text=gettext_lazy(
            "opened, new, reopened, resolved, snoozed, customer_messages, replies, ratings, contacts, unread_now, "
            "csat, and <metric>_<median|p90|average> for each duration metric (seconds)."
        )
    )
    current = serializers.FloatField(allow_null=True)
    previous = serializers.FloatField(allow_null=True, help_text=gettext_lazy("The same length just before."))
    change = serializers.FloatField(
        allow_null=True, help_text=gettext_lazy("Percent; null when the previous value is 0 or missing.")
    )


class ReportDurationPairOut(serializers.Serializer):
    current = ReportDurationOut()
    previous = ReportDurationOut()


ReportDurationsOut = type(
    "ReportDurationsOut",
    (serializers.Serializer,),
    {metric: ReportDurationPairOut() for metric in DURATION_METRICS},
)


class ReportHourOut(serializers.Serializer):
    hour = serializers.IntegerField()
    customer_messages = serializers.IntegerField()
    replies = serializers.IntegerField()
    first_response = ReportDurationOut()


class ReportDayOut(serializers.Serializer):
    day = serializers.DateField()
    opened = serializers.IntegerField()
    resolved = serializers.IntegerField()
    customer_messages = serializers.IntegerField()
    replies = serializers.IntegerField()


class ReportWorkloadRowOut(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text=gettext_lazy("null: unassigned, or no team."))
    name = serializers.CharField(allow_null=True)
    resolved = serializers.IntegerField()
    replies = serializers.IntegerField()
    first_response = ReportDurationOut()
    ratings = serializers.IntegerField()
    csat = serializers.FloatField(allow_null=True, help_text=gettext_lazy("Percent of 4–5 ratings; null: none."))


class ReportWorkloadOut(serializers.Serializer):
    agents = ReportWorkloadRowOut(many=True)
    teams = ReportWorkloadRowOut(many=True)
    channels = ReportWorkloadRowOut(many=True)


class ReportDashboardOut(serializers.Serializer):
    period = ReportPeriodOut()
    filters = ReportFiltersOut()
    tiles = ReportTileOut(many=True)
    durations = ReportDurationsOut()
    by_hour = ReportHourOut(many=True)
    by_day = ReportDayOut(many=True)
    workload = ReportWorkloadOut()


class ReportHeatmapOut(serializers.Serializer):
    period = ReportPeriodOut()
    filters = ReportFiltersOut()
    metric = serializers.ChoiceField(choices=HEATMAP_METRICS)
    mode = serializers.ChoiceField(choices=HEATMAP_MODES)
    cells = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(allow_null=True)),
        help_text=gettext_lazy(
            "7 rows (Monday first) of 24 local hours; in average mode null where the hour never occurs."
        ),
    )
    occurrences = serializers.ListField(child=serializers.ListField(child=serializers.IntegerField()))


class ReportQueueOut(serializers.Serializer):
    team_id = serializers.IntegerField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    waiting = serializers.IntegerField()
    longest_wait = serializers.FloatField(allow_null=True, help_text=gettext_lazy("Seconds."))


class ReportAgentOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    presence = serializers.CharField()
    open = serializers.IntegerField()
    snoozed = serializers.IntegerField()
    capacity = serializers.IntegerField()


class ReportLiveOut(serializers.Serializer):
    queues = ReportQueueOut(many=True)
    longest_wait = serializers.FloatField(allow_null=True)
    online = serializers.IntegerField()
    away = serializers.IntegerField()
    agents = ReportAgentOut(many=True)


# --- Views -------------------------------------------------------------------------------------------


class DashboardApi(APIView):
    @extend_schema(
        tags=TAGS,
        parameters=[ReportQuery],
        responses={200: ReportDashboardOut, **errors(400, 403, 404)},
        description=(
            "The dashboard for a period (compared with the one before): tiles, by hour, by day, and workload per "
            "agent, team and channel. Needs the view-reports permission; your conversation-access scope applies."
        ),
    )
    def get(self, request):
        a = asked(request, ReportQuery)
        return Response(dashboard_data(a.reader, queries.dashboard(a.reader, a.period, a.filters)))


class HeatmapApi(APIView):
    @extend_schema(
        tags=TAGS,
        parameters=[HeatmapQuery],
        responses={200: ReportHeatmapOut, **errors(400, 403, 404)},
        description="The weekday × hour heatmap (local time, correct across daylight-saving changes).",
    )
    def get(self, request):
        a = asked(request, HeatmapQuery)
        heat = queries.heatmap(a.reader, a.period, a.filters, a.data["metric"], a.data["mode"])
        return Response(heatmap_data(a, heat))


def cell_rows(a: Asked):
    """A heatmap cell's conversations, through the inbox's gate, as the inbox lists them."""
    rows = queries.heatmap_cell(a.reader, a.period, a.filters, a.data["metric"], a.data["weekday"], a.data["hour"])
    return conversation_queries.inbox_rows(rows, a.reader).select_related("team")


@extend_schema(
    tags=TAGS,
    parameters=[CellQuery],
    responses={200: ConversationRowOut(many=True), **errors(400, 403, 404)},
    description="The conversations behind one heatmap cell that you may open now, latest activity first.",
)
class HeatmapCellApi(GatedListApi):
    model = Conversation
    serializer_class = ConversationRowOut

    def rows(self, employee: Employee):
        return cell_rows(asked(self.request, CellQuery, extra=("limit", "offset")))


class LiveApi(APIView):
    @extend_schema(
        tags=TAGS,
        responses={200: ReportLiveOut, **errors(400, 403)},
        description="Now: waiting per team, the longest wait, agents online and away with their open and snoozed load.",
    )
    def get(self, request):
        return Response(live_data(queries.live(live_reader(request))))
