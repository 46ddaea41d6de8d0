"""CSV files of every report table and of the conversation list, for Excel and BI tools.

Streamed through helpdesk/csvexport.py (a UTF-8 BOM, formula-safe cells, rows read from the
database as they are sent). Each needs the export permission, the reports' ones view-reports as
well, and the reader's scope applies exactly as on screen. Words are in the request's language,
times in the company's time zone. Errors are the API's JSON errors; nothing is computed from a
bad request. The URLs are stable (docs/metrics.md lists them), for links from the Reports page.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.utils import dates
from django.utils import timezone as django_timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from helpdesk import csvexport
from helpdesk.accounts.models import Employee, Presence
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.conversations import queries as conversation_queries
from helpdesk.conversations.models import Conversation, Priority, Status
from helpdesk.reports import labels, queries

from .common import me
from .filters import ConversationFilter
from .reports import Asked, CellQuery, HeatmapQuery, ReportQuery, asked, cell_rows, live_reader, names
from .schema import AutoSchema, errors

TAGS = ["exports"]
REPORT_PERMS = (Perm.VIEW_REPORTS, Perm.EXPORT)


class JsonErrorsForAnyAccept(BaseContentNegotiation):
    """A CSV endpoint answers CSV, whatever Accept says (a BI tool may ask for text/csv); its
    errors are the API's JSON, rendered by the view's JSON renderer."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _csv_schema(description: str, parameters=None, perms: str = "export and view-reports"):
    return extend_schema(
        tags=TAGS,
        parameters=parameters,
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description=gettext_lazy("CSV, UTF-8 with a BOM, a header row in your language.")
            ),
            **errors(400, 403, 404),
        },
        description=f"{description} Needs the {perms} permissions; your conversation-access scope applies.",
    )


# --- The tables ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: Iterable[Any]
    line: Callable[[Any], list[Any]] = lambda row: row


def _duration_header(metric: str) -> list[str]:
    name = labels.DURATIONS[metric]
    return [
        _("%(name)s, samples") % {"name": name},
        *(f"{name}, {labels.AGGREGATES[a]}" for a in ("median", "p90", "average")),
    ]


def _duration(d: queries.Duration) -> list[Any]:
    return [d.count, d.median, d.p90, d.average]


def tiles_table(a: Asked) -> Table:
    board = queries.dashboard(a.reader, a.period, a.filters)
    rows = [[labels.tile(t.key), t.key, t.current, t.previous, t.change] for t in board.tiles]
    return Table([_("Figure"), _("Key"), _("This period"), _("Previous period"), _("Change, %")], rows)


def by_hour_table(a: Asked) -> Table:
    board = queries.dashboard(a.reader, a.period, a.filters)
    header = [_("Hour"), str(labels.COUNTS["customer_messages"]), str(labels.COUNTS["replies"])]
    header += _duration_header("first_response")
    rows = [[f"{p.hour:02d}:00", p.customer_messages, p.replies, *_duration(p.first_response)] for p in board.by_hour]
    return Table(header, rows)


def by_day_table(a: Asked) -> Table:
    board = queries.dashboard(a.reader, a.period, a.filters)
    header = [_("Day"), str(labels.COUNTS["opened"]), str(labels.COUNTS["resolved"])]
    header += [str(labels.COUNTS["customer_messages"]), str(labels.COUNTS["replies"])]
    rows = [[p.day, p.opened, p.resolved, p.customer_messages, p.replies] for p in board.by_day]
    return Table(header, rows)


def workload_table(kind: str) -> Callable[[Asked], Table]:
    def table(a: Asked) -> Table:
        board = queries.dashboard(a.reader, a.period, a.filters)
        rows = [row for row in board.workload if row.kind == kind]
        known = names(a.reader, kind, [row.id for row in rows])
        nobody = {"agent": _("(unassigned)"), "team": _("(no team)"), "channel": _("(no channel)")}[kind]
        title = {"agent": _("Agent"), "team": _("Team"), "channel": _("Channel")}[kind]
        header = [title, _("ID"), str(labels.COUNTS["resolved"]), str(labels.COUNTS["replies"])]
        header += [*_duration_header("first_response"), str(labels.COUNTS["ratings"]), str(labels.COUNTS["csat"])]
        out = [
            [
                known.get(row.id, nobody) if row.id else nobody,
                row.id or None,
                row.resolved,
                row.replies,
                *_duration(row.first_response),
                row.ratings,
                row.csat,
            ]
            for row in rows
        ]
        return Table(header, out)

    return table


def heatmap_table(a: Asked) -> Table:
    heat = queries.heatmap(a.reader, a.period, a.filters, a.data["metric"], a.data["mode"])
    weekdays = [str(dates.WEEKDAYS[d]) for d in range(7)]
    header = [_("Weekday"), *(f"{h:02d}:00" for h in range(24))]
    return Table(header, [[weekdays[wd], *heat.cells[wd]] for wd in range(7)])


def live_agents_table(reader: Employee) -> Table:
    now = queries.live(reader)
    presence = {value: str(label) for value, label in Presence.choices}
    header = [_("Agent"), _("ID"), _("Presence"), _("Open"), _("Snoozed"), _("Capacity")]
    rows = [[x.name, x.id, presence.get(x.presence, x.presence), x.open, x.snoozed, x.capacity] for x in now.agents]
    return Table(header, rows)


def live_queues_table(reader: Employee) -> Table:
    now = queries.live(reader)
    header = [_("Team"), _("ID"), _("Waiting"), _("Longest wait, s")]
    rows = [[q.name or _("(no team)"), q.team_id or None, q.waiting, q.longest_wait] for q in now.queues]
    return Table(header, rows)


def conversation_table(reader: Employee, rows) -> Table:
    """The inbox list's rows, one line each, read from the database as they are written."""
    tz = zoneinfo.ZoneInfo(reader.company.timezone or "UTC")
    statuses = {value: str(label) for value, label in Status.choices}
    priorities = {value: str(label) for value, label in Priority.choices}
    visitor = _("Visitor #%(id)s")
    header = [_("ID"), _("Contact"), _("Channel"), _("Status"), _("Priority"), _("Assignee"), _("Team")]
    header += [_("Created"), _("Last activity"), _("Waiting since"), _("Snoozed until"), _("Unread"), _("Last message")]

    def local(value):
        return django_timezone.localtime(value, tz) if value else None

    def line(c: Conversation) -> list[Any]:
        return [
            c.pk,
            c.contact.own_name or visitor % {"id": c.contact_id},
            c.channel.name,
            statuses.get(c.status, c.status),
            priorities.get(c.priority, c.priority),
            c.assignee.display_name if c.assignee_id else "",
            c.team.name if c.team_id else "",
            local(c.created_at),
            local(c.last_activity_at),
            local(c.waiting_since),
            local(c.snoozed_until),
            getattr(c, "unread", 0),
            c.last_message_preview,
        ]

    return Table(header, rows, line)


def _filename(kind: str, a: Asked | None = None, *, reader: Employee | None = None) -> str:
    """report-tiles-2025-03-01-2025-03-30.csv for a period; conversations-2025-03-30.csv (today, the company's)."""
    if a is None:
        today = django_timezone.localdate(timezone=zoneinfo.ZoneInfo(reader.company.timezone or "UTC"))
        return f"{kind}-{today:%Y-%m-%d}.csv"
    return f"report-{kind}-{a.period.first:%Y-%m-%d}-{a.period.last:%Y-%m-%d}.csv"


# --- Views ---------------------------------------------------------------------------------------------


class _CsvApi(APIView):
    content_negotiation_class = JsonErrorsForAnyAccept

    def send(self, table: Table, filename: str):
        return csvexport.stream(self.request, header=table.header, rows=table.rows, line=table.line, filename=filename)


def _report(name: str, build: Callable[[Asked], Table], query=ReportQuery, what: str = "") -> type[_CsvApi]:
    @_csv_schema(what, [query])
    def get(self, request):
        a = asked(request, query, perms=REPORT_PERMS)
        return self.send(build(a), _filename(name, a))

    return type(f"Report{name.title().replace('-', '')}CsvApi", (_CsvApi,), {"get": get, "__doc__": what})


TilesCsvApi = _report("tiles", tiles_table, what="The dashboard's tiles: this period, the previous one, the change.")
ByHourCsvApi = _report("by-hour", by_hour_table, what="Customer messages, replies and first response by local hour.")
ByDayCsvApi = _report("by-day", by_day_table, what="Opened, resolved, customer messages and replies per local day.")
WorkloadAgentsCsvApi = _report("workload-agents", workload_table("agent"), what="Workload per agent for the period.")
WorkloadTeamsCsvApi = _report("workload-teams", workload_table("team"), what="Workload per team for the period.")
WorkloadChannelsCsvApi = _report(
    "workload-channels", workload_table("channel"), what="Workload per channel for the period."
)
HeatmapCsvApi = _report(
    "heatmap", heatmap_table, HeatmapQuery, what="The weekday × hour heatmap: a row per weekday, a column per hour."
)
HeatmapCellCsvApi = _report(
    "heatmap-cell",
    lambda a: conversation_table(a.reader, cell_rows(a)),
    CellQuery,
    what="The conversations behind one heatmap cell that you may open now.",
)


class LiveAgentsCsvApi(_CsvApi):
    @_csv_schema("Now: each agent's presence, open and snoozed load and capacity.", [])
    def get(self, request):
        reader = live_reader(request, REPORT_PERMS)
        return self.send(live_agents_table(reader), _filename("live-agents", reader=reader))


class LiveQueuesCsvApi(_CsvApi):
    @_csv_schema("Now: conversations waiting per team and the longest wait.", [])
    def get(self, request):
        reader = live_reader(request, REPORT_PERMS)
        return self.send(live_queues_table(reader), _filename("live-queues", reader=reader))


class _FilteredFileSchema(AutoSchema):
    """A list answered as one file is still a list: its filters belong in the schema."""

    def get_filter_backends(self):
        return getattr(self.view, "filter_backends", [])


class ConversationsCsvApi(_CsvApi, GenericAPIView):
    """The conversation list (the same filters and defaults as GET /conversations/), as CSV."""

    filterset_class = ConversationFilter
    pagination_class = None
    schema = _FilteredFileSchema()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Conversation.objects.none()
        reader = me(self.request)
        rows = conversation_queries.inbox_rows(access.visible_conversations(reader), reader)
        return rows.select_related("team")

    @_csv_schema(
        "The conversation list with the filters of GET /conversations/ (view mine and status open by default).",
        perms="export",
    )
    def get(self, request):
        reader = me(request)
        access.require(reader, Perm.EXPORT)
        rows = self.filter_queryset(self.get_queryset())
        return self.send(conversation_table(reader, rows), _filename("conversations", reader=reader))
