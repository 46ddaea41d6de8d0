"""Statistics for readers: periods, filters, the dashboard, the heatmap, the live queue.

Every figure is defined in docs/metrics.md. The product reads the rollups (``RollupSource``
in rollup_source.py); raw.py computes the same figures from raw rows (the tests' reference).
Both feed the same assembly here, through a ``Source``. The reader's access scope narrows
every figure; every query starts from the reader's company.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee, Scope
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.conversations.models import Conversation, Direction, Message, MessageKind, Priority, ReadMarker, Status
from helpdesk.errors import ActionError

from .live import AgentLive, Live, TeamQueue, live  # noqa: F401  (part of this interface)

MAX_DAYS = 400
PRESETS = {"today": 1, "7d": 7, "30d": 30, "6m": 180, "1y": 365}
HEATMAP_METRICS = ("new_conversations", "customer_messages", "active_conversations")
HEATMAP_MODES = ("total", "average")
COUNTERS = ("new", "reopened", "resolved", "snoozed", "customer_messages", "replies", "ratings", "ratings_good")
DURATION_METRICS = ("first_response", "reply_time", "resolution_first", "resolution_last")


# --- Periods ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole local days [first, last] in the company's time zone, and the same length before."""

    first: date
    last: date
    tz: str
    preset: str = "custom"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def previous(self) -> Period:
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1), self.tz, "previous")

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]

    def bounds(self) -> tuple[datetime, datetime]:
        """The instants [start, end): local midnight of the first day to local midnight after the last."""
        tz = zoneinfo.ZoneInfo(self.tz)
        start = datetime.combine(self.first, datetime.min.time(), tzinfo=tz)
        end = datetime.combine(self.last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)

    @classmethod
    def parse(
        cls,
        company,
        preset: str | None = None,
        *,
        start: date | str | None = None,
        end: date | str | None = None,
        today: date | None = None,
    ) -> Period:
        """A preset (today, 7d, 30d, 6m, 1y) or a custom range of dates (both included)."""
        tz = company.timezone or "UTC"
        today = today or timezone.now().astimezone(zoneinfo.ZoneInfo(tz)).date()
        if preset and preset != "custom":
            if preset not in PRESETS:
                raise ActionError(_("Unknown period."), code="bad_period", field="period")
            return cls(today - timedelta(days=PRESETS[preset] - 1), today, tz, preset)
        if start is None or end is None:
            raise ActionError(_("A range needs a start and an end date."), code="bad_range", field="start")
        first, last = _date(start, "start"), _date(end, "end")
        if last < first:
            raise ActionError(_("The range ends before it starts."), code="range_reversed", field="end")
        if (last - first).days + 1 > MAX_DAYS:
            raise ActionError(
                _("A range is at most %(days)s days.") % {"days": MAX_DAYS}, code="range_too_long", field="end"
            )
        return cls(first, last, tz, "custom")


def _date(value: date | str, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ActionError(_("Not a date (YYYY-MM-DD)."), code="bad_date", field=name) from None


# --- Filters and scope -----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    team_id: int | None = None
    channel_id: int | None = None
    agent_id: int | None = None
    role_id: int | None = None
    priority: int | None = None

    @classmethod
    def parse(cls, reader: Employee, **values) -> Filters:
        """Checked against the reader's company: another company's (or no such) id raises Http404,
        an unknown priority or filter name ActionError."""
        unknown = set(values) - {"team", "channel", "agent", "role", "priority"}
        if unknown:
            raise ActionError(_("Unknown filter: %(name)s.") % {"name": sorted(unknown)[0]}, code="bad_filter")

        def given(name):
            value = values.get(name)
            return None if value in (None, "") else value

        priority = given("priority")
        if priority is not None:
            try:
                priority = int(priority)
            except (TypeError, ValueError):
                priority = -1
            if priority not in Priority.values:
                raise ActionError(_("Unknown priority."), code="bad_priority", field="priority")
        # access.get_* answer 404 for another company's id exactly as for a missing one.
        return cls(
            team_id=access.get_team(reader, given("team")).pk if given("team") is not None else None,
            channel_id=access._get(readable_channels(reader), given("channel")).pk
            if given("channel") is not None
            else None,
            agent_id=access.get_employee(reader, given("agent")).pk if given("agent") is not None else None,
            role_id=access.get_role(reader, given("role")).pk if given("role") is not None else None,
            priority=priority,
        )

    def matches(self, dims) -> bool:
        """For the raw computation: does a fact's credit (facts.Dims) pass the filters?"""
        return (
            (self.team_id is None or dims.team == self.team_id)
            and (self.channel_id is None or dims.channel == self.channel_id)
            and (self.agent_id is None or dims.agent == self.agent_id)
            and (self.role_id is None or dims.role == self.role_id)
            and (self.priority is None or dims.priority == self.priority)
        )

    def q(self) -> Q:
        q = Q()
        for name, value in (
            ("team", self.team_id),
            ("channel", self.channel_id),
            ("agent", self.agent_id),
            ("role", self.role_id),
            ("priority", self.priority),
        ):
            if value is not None:
                q &= Q(**{name: value})
        return q


def readable_channels(reader: Employee):
    from helpdesk.conversations.models import Channel

    # Removed channels keep their history: they can still be chosen in statistics.
    return Channel.objects.filter(company_id=reader.company_id)


@dataclass(frozen=True)
class ReaderScope:
    company_id: int
    scope: str
    employee_id: int
    team_ids: frozenset[int]

    @classmethod
    def of(cls, reader: Employee) -> ReaderScope:
        if not reader.is_active:
            return cls(reader.company_id, "none", reader.pk, frozenset())
        return cls(
            reader.company_id,
            reader.role.scope,
            reader.pk,
            frozenset(reader.teams.values_list("pk", flat=True)) if reader.role.scope == Scope.TEAMS else frozenset(),
        )

    def matches(self, dims) -> bool:
        if self.scope == Scope.ALL:
            return True
        if self.scope == Scope.TEAMS:
            return dims.agent == self.employee_id or dims.team in self.team_ids
        if self.scope == Scope.ASSIGNED:
            return dims.agent == self.employee_id
        return False

    def q(self) -> Q:
        if self.scope == Scope.ALL:
            return Q()
        if self.scope == Scope.TEAMS:
            return Q(agent=self.employee_id) | Q(team__in=sorted(self.team_ids))
        if self.scope == Scope.ASSIGNED:
            return Q(agent=self.employee_id)
        return Q(pk__in=[])


# --- Results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Duration:
    count: int
    median: float | None
    p90: float | None
    average: float | None


@dataclass(frozen=True)
class Tile:
    key: str
    current: float | None
    previous: float | None
    change: float | None  # percent; None when the previous value is 0 or missing


@dataclass(frozen=True)
class HourPoint:
    hour: int
    customer_messages: int
    replies: int
    first_response: Duration


@dataclass(frozen=True)
class DayPoint:
    day: date
    opened: int
    resolved: int
    customer_messages: int
    replies: int


@dataclass(frozen=True)
class WorkloadRow:
    kind: str  # "agent", "team" or "channel"
    id: int  # 0: none (unassigned, no team)
    resolved: int
    replies: int
    first_response: Duration
    ratings: int
    csat: float | None


@dataclass(frozen=True)
class Dashboard:
    period: Period
    filters: Filters
    tiles: tuple[Tile, ...]
    durations: dict[str, tuple[Duration, Duration]] = field(hash=False)  # metric -> (current, previous)
    by_hour: tuple[HourPoint, ...] = ()
    by_day: tuple[DayPoint, ...] = ()
    workload: tuple[WorkloadRow, ...] = ()

    def tile(self, key: str) -> Tile:
        return next(t for t in self.tiles if t.key == key)


@dataclass(frozen=True)
class Heatmap:
    metric: str
    mode: str
    cells: tuple[tuple[float | None, ...], ...]  # [weekday 0=Monday][hour 0..23]
    occurrences: tuple[tuple[int, ...], ...]


# --- Where figures come from -----------------------------------------------------------------


class Source(Protocol):
    """What the assembly needs; rollups and raw rows answer the same questions."""

    def sums(self, period: Period, group: str | None) -> dict: ...  # key -> {counter: n, "<metric>_n"/"_sum": ...}

    def durations(self, period: Period, metric: str, group: str | None) -> dict: ...  # key -> Duration

    def contacts(self, period: Period) -> int: ...

    def heatmap_counts(self, period: Period, metric: str) -> dict: ...  # (weekday, hour) -> n


def _source(reader: Employee, filters: Filters):
    from .applier import catch_up
    from .rollup_source import RollupSource

    catch_up()  # everything committed before this read is in the figures (applier.py)
    return RollupSource(ReaderScope.of(reader), filters)


def _change(current, previous) -> float | None:
    if current is None or not previous:
        return None
    return round((current - previous) / previous * 100, 1)


def _csat(sums: dict) -> float | None:
    n = sums.get("ratings", 0)
    return round(sums.get("ratings_good", 0) / n * 100, 4) if n else None


def assemble(source: Source, reader: Employee, period: Period, filters: Filters) -> Dashboard:
    prefetch = getattr(source, "prefetch", None)
    if prefetch is not None:  # the rollups: every grouping of a period in one pass per table
        prefetch(period)
        prefetch(period.previous, ())
    current = source.sums(period, None).get(None, {})
    previous = source.sums(period.previous, None).get(None, {})
    durations = {
        metric: (
            source.durations(period, metric, None).get(None, Duration(0, None, None, None)),
            source.durations(period.previous, metric, None).get(None, Duration(0, None, None, None)),
        )
        for metric in DURATION_METRICS
    }

    def counter(sums, key):
        if key == "opened":
            return sums.get("new", 0) + sums.get("reopened", 0)
        return sums.get(key, 0)

    tiles = [
        Tile(k, counter(current, k), counter(previous, k), _change(counter(current, k), counter(previous, k)))
        for k in ("opened", "new", "reopened", "resolved", "snoozed", "customer_messages", "replies", "ratings")
    ]
    c_now, c_before = source.contacts(period), source.contacts(period.previous)
    tiles.append(Tile("contacts", c_now, c_before, _change(c_now, c_before)))
    tiles.append(Tile("unread_now", unread_now(reader, filters), None, None))
    for metric, (cur, prev) in durations.items():
        for agg in ("median", "p90", "average"):
            a, b = getattr(cur, agg), getattr(prev, agg)
            tiles.append(Tile(f"{metric}_{agg}", a, b, _change(a, b)))
    csat_now, csat_before = _csat(current), _csat(previous)
    tiles.append(Tile("csat", csat_now, csat_before, _change(csat_now, csat_before)))

    hours = source.sums(period, "local_hour")
    hour_frt = source.durations(period, "first_response", "local_hour")
    by_hour = tuple(
        HourPoint(
            h,
            hours.get(h, {}).get("customer_messages", 0),
            hours.get(h, {}).get("replies", 0),
            hour_frt.get(h, Duration(0, None, None, None)),
        )
        for h in range(24)
    )
    days = source.sums(period, "local_day")
    by_day = tuple(
        DayPoint(
            d,
            days.get(d, {}).get("new", 0) + days.get(d, {}).get("reopened", 0),
            days.get(d, {}).get("resolved", 0),
            days.get(d, {}).get("customer_messages", 0),
            days.get(d, {}).get("replies", 0),
        )
        for d in period.dates()
    )
    workload = []
    for kind in ("agent", "team", "channel"):
        sums = source.sums(period, kind)
        frt = source.durations(period, "first_response", kind)
        for key in sorted(set(sums) | set(frt)):
            row = sums.get(key, {})
            if not any(row.get(k) for k in ("resolved", "replies", "ratings")) and key not in frt:
                continue
            workload.append(
                WorkloadRow(
                    kind,
                    key,
                    row.get("resolved", 0),
                    row.get("replies", 0),
                    frt.get(key, Duration(0, None, None, None)),
                    row.get("ratings", 0),
                    _csat(row),
                )
            )
    return Dashboard(period, filters, tuple(tiles), durations, by_hour, by_day, tuple(workload))


def dashboard(reader: Employee, period: Period, filters: Filters | None = None) -> Dashboard:
    access.require(reader, Perm.VIEW_REPORTS)
    filters = filters or Filters()
    return assemble(_source(reader, filters), reader, period, filters)


def occurrences(period: Period) -> tuple[tuple[int, ...], ...]:
    """How many days of the period have each weekday with each local hour existing."""
    tz = zoneinfo.ZoneInfo(period.tz)
    grid = [[0] * 24 for _ in range(7)]
    for day in period.dates():
        start = datetime.combine(day, datetime.min.time(), tzinfo=tz).astimezone(UTC)
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz).astimezone(UTC)
        seen = set()
        t = start
        while t < end:
            seen.add(t.astimezone(tz).hour)
            t += timedelta(hours=1)
        for h in seen:
            grid[day.weekday()][h] += 1
    return tuple(tuple(row) for row in grid)


def assemble_heatmap(source: Source, period: Period, metric: str, mode: str) -> Heatmap:
    if metric not in HEATMAP_METRICS:
        raise ActionError(_("Unknown heatmap metric."), code="bad_metric", field="metric")
    if mode not in HEATMAP_MODES:
        raise ActionError(_("Unknown heatmap mode."), code="bad_mode", field="mode")
    counts = source.heatmap_counts(period, metric)
    occ = occurrences(period)
    cells = []
    for wd in range(7):
        row = []
        for h in range(24):
            n = counts.get((wd, h), 0)
            if mode == "total":
                row.append(n)
            else:
                row.append(round(n / occ[wd][h], 4) if occ[wd][h] else None)
        cells.append(tuple(row))
    return Heatmap(metric, mode, tuple(cells), occ)


def heatmap(reader: Employee, period: Period, filters: Filters | None, metric: str, mode: str = "total") -> Heatmap:
    access.require(reader, Perm.VIEW_REPORTS)
    return assemble_heatmap(_source(reader, filters or Filters()), period, metric, mode)


def heatmap_cell(
    reader: Employee, period: Period, filters: Filters | None, metric: str, weekday: int, hour: int
) -> QuerySet[Conversation]:
    """The conversations behind one heatmap cell, through the inbox's gate."""
    from .applier import catch_up
    from .rollup_source import cell_conversation_ids

    access.require(reader, Perm.VIEW_REPORTS)
    if metric not in HEATMAP_METRICS:
        raise ActionError(_("Unknown heatmap metric."), code="bad_metric", field="metric")
    if not (0 <= int(weekday) <= 6 and 0 <= int(hour) <= 23):
        raise ActionError(_("No such heatmap cell."), code="bad_cell")
    catch_up()
    ids = cell_conversation_ids(ReaderScope.of(reader), filters or Filters(), period, metric, int(weekday), int(hour))
    return access.visible_conversations(reader).filter(pk__in=ids).order_by("-last_activity_at")


# --- Live figures (now, not a period) ----------------------------------------------------------


def unread_now(reader: Employee, filters: Filters | None = None) -> int:
    """Customer messages nobody has read, in open and snoozed conversations the reader may see."""
    filters = filters or Filters()
    conversations = access.visible_conversations(reader).filter(status__in=[Status.OPEN, Status.SNOOZED])
    if filters.team_id is not None:
        conversations = conversations.filter(team_id=filters.team_id)
    if filters.channel_id is not None:
        conversations = conversations.filter(channel_id=filters.channel_id)
    if filters.agent_id is not None:
        conversations = conversations.filter(assignee_id=filters.agent_id)
    if filters.role_id is not None:
        conversations = conversations.filter(assignee__role_id=filters.role_id)
    if filters.priority is not None:
        conversations = conversations.filter(priority=filters.priority)
    # Nobody has read it: its id is above every employee's marker of its conversation. One query:
    # the open conversations' customer messages (an index-only range of the partial index
    # msg_customer_thread per conversation), less those at or below the conversation's highest
    # marker (the markers of just those conversations, grouped once and hash-joined: a
    # correlated look-up per conversation cost more than the count itself).
    open_sql, open_params = conversations.order_by().values("pk").query.sql_with_params()
    message, marker = Message._meta.db_table, ReadMarker._meta.db_table
    # Our own table names; every value is a parameter.
    sql = (
        f"WITH open_(id) AS ({open_sql}), marks AS ("  # noqa: S608
        f"SELECT r.conversation_id, MAX(r.last_read_message_id) AS read_to FROM {marker} r "
        f"WHERE r.conversation_id IN (SELECT id FROM open_) GROUP BY r.conversation_id) "
        f"SELECT COUNT(*) FROM open_ JOIN {message} m ON m.conversation_id = open_.id "
        f"LEFT JOIN marks ON marks.conversation_id = open_.id "
        # Literals, as in the partial index's condition, so the planner can match it.
        f"WHERE m.direction = '{Direction.INBOUND.value}' AND m.kind = '{MessageKind.MESSAGE.value}' "
        f"AND NOT m.while_blocked AND m.id > COALESCE(marks.read_to, 0)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, open_params)
        return cursor.fetchone()[0] or 0
