"""The product's source of figures: SQL over the rollups (never over messages)."""

from __future__ import annotations

from datetime import date, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Exists, OuterRef, Q, Sum

from helpdesk.accounts.models import Scope

from . import bins
from .facts import METRIC_CODE, TOUCH_CODE
from .models import (
    CompanyDayBin,
    CompanyHour,
    CompanyHourBin,
    ContactDay,
    ContactLast,
    ContactLastAgent,
    ContactLastTeam,
    DailyBin,
    DailyBucket,
    DurationBin,
    HourlyBucket,
    MonthBin,
    MonthHourBin,
    MonthHourBucket,
    Touch,
)
from .queries import Duration, Filters, Period, ReaderScope

SUMMED = (
    "new",
    "reopened",
    "resolved",
    "snoozed",
    "customer_messages",
    "replies",
    "ratings",
    "ratings_good",
    *(
        f"{m}_{x}"
        for m in ("first_response", "reply_time", "resolution_first", "resolution_last")
        for x in ("n", "sum")
    ),
)
HEATMAP_TOUCH = {"new_conversations": "new", "customer_messages": "customer_message", "active_conversations": "active"}


_UNREAD = object()

# The groupings the dashboard reads for its period (queries.assemble): the tiles (no grouping),
# by hour, by day and the workload. One pass over the period's rows answers all of them.
DASHBOARD_GROUPS = ("local_hour", "local_day", "agent", "team", "channel")
_DURATION_GROUPS = ("local_hour", "agent", "team", "channel")  # first response by hour and workload


class RollupSource:
    """Answers each question from one grouped pass per table and period (``prefetch``): on
    PostgreSQL one ``GROUPING SETS`` statement returns every grouping the dashboard needs;
    elsewhere (SQLite, the tests) one statement per grouping. Unprefetched questions are asked
    on their own."""

    def __init__(self, scope: ReaderScope, filters: Filters):
        self.scope, self.filters = scope, filters
        self._sums: dict = {}  # (period, group) -> {key: {column: n}}
        self._bins: dict = {}  # (period, group) -> {metric code: {key: [(bin, n)]}}
        # A reader who sees everything and filters nothing reads the company-wide rollups where
        # no grouping by a dimension is asked (by hour, the histograms): the dimensions summed away.
        self.company_wide = scope.scope == Scope.ALL and filters == Filters()
        self._latest = _UNREAD  # the company's latest day with customer messages (contacts)

    def _company_rows(self, model, period: Period):
        return model.objects.filter(company_id=self.scope.company_id, local_day__range=(period.first, period.last))

    def _rows(self, model, period: Period):
        return model.objects.filter(
            self.scope.q(),
            self.filters.q(),
            company_id=self.scope.company_id,
            local_day__range=(period.first, period.last),
        )

    def _split(self, day_model, month_model, period: Period, sets, aggregates: str, **where) -> dict | None:
        """``_grouped`` over a period's rows: its whole local months from the month grain
        (``month_model``), only its edge days from the finer table (``day_model``, by local day).
        An edge longer than the rest of its month is read as the whole month less the rest."""
        months = whole_months(period.first, period.last)
        if month_model is None or months is None:
            return _grouped(self._rows(day_model, period).filter(**where), sets, aggregates)
        first, end = months
        added, taken = [], []  # day ranges to add, and to subtract (the rest of a month read whole)
        if period.first < first:
            month = period.first.replace(day=1)
            if (period.first - month).days < (first - period.first).days:
                first = month
                taken.append((month, period.first - timedelta(days=1)))
            else:
                added.append((period.first, first - timedelta(days=1)))
        if end <= period.last:
            after = _next_month(end)
            if (after - period.last).days - 1 < (period.last - end).days + 1:
                taken.append((period.last + timedelta(days=1), after - timedelta(days=1)))
                end = after
            else:
                added.append((end, period.last))
        base = month_model.objects.filter(self.scope.q(), self.filters.q(), company_id=self.scope.company_id)
        parts = [(1, _grouped(base.filter(month__gte=first, month__lt=end, **where), sets, aggregates))]
        for sign, ranges in ((1, added), (-1, taken)):
            if not ranges:
                continue
            days = Q(local_day__range=ranges[0])
            for more in ranges[1:]:
                days |= Q(local_day__range=more)
            rows = day_model.objects.filter(
                days, self.scope.q(), self.filters.q(), company_id=self.scope.company_id, **where
            )
            parts.append((sign, _grouped(rows, sets, aggregates)))
        return _merge(parts)

    def prefetch(self, period: Period, groups: tuple[str, ...] = DASHBOARD_GROUPS, *, durations: bool = True) -> None:
        """Fetch the sums (and, with ``durations``, the duration bins) of the period for no
        grouping and every grouping in ``groups``: the daily buckets answer all but the hour of
        day in one statement, the hourly buckets that one; the daily bins give every metric's
        histogram, and the first response's per agent, team and channel; the hourly bins its
        histogram per hour of day. Whole local months inside the period are read from the month
        grain instead of the hourly and daily bins and the hourly buckets (``_split``)."""
        summed = ", ".join(f"SUM({name})" for name in SUMMED)
        daily = [(), *((g,) for g in groups if g != "local_hour")]
        hourly = [(g,) for g in groups if g == "local_hour"]
        fetched = [_grouped(self._rows(DailyBucket, period), daily, summed)]
        if hourly:
            if self.company_wide:
                fetched.append(_grouped(self._company_rows(CompanyHour, period), hourly, summed))
            else:
                fetched.append(self._split(HourlyBucket, MonthHourBucket, period, hourly, summed))
        if any(f is None for f in fetched):  # nothing can match (no scope): the plain queries answer
            return
        for sums in fetched:
            for key, values in sums.items():
                self._sums[(period, key[0] if key else None)] = {
                    (k[0] if k else None): dict(zip(SUMMED, (v or 0 for v in row), strict=True))
                    for k, row in values.items()
                }
        if not durations:
            return
        # Every metric named: the keys lead with (company, metric, day|month), a range per metric.
        metrics = sorted(METRIC_CODE.values())
        if self.company_wide:
            every_metric = self._company_rows(CompanyDayBin, period).filter(metric__in=metrics)
            every = _grouped(every_metric, [("metric", "bin")], "SUM(count)")
        else:
            every = self._split(DailyBin, MonthBin, period, [("metric", "bin")], "SUM(count)", metric__in=metrics)
        histo: dict = self._bins.setdefault((period, None), {})
        for (metric, bin_), (n,) in every[("metric", "bin")].items():
            histo.setdefault(metric, {}).setdefault(None, []).append((bin_, n or 0))
        code = METRIC_CODE["first_response"]
        daily = [("bin", g) for g in groups if g in _DURATION_GROUPS and g != "local_hour"]
        hourly = [("bin", g) for g in groups if g == "local_hour"]
        for sets, day_model, month_model in ((daily, DailyBin, MonthBin), (hourly, DurationBin, MonthHourBin)):
            if not sets:
                continue
            if sets is hourly and self.company_wide:
                first = _grouped(self._company_rows(CompanyHourBin, period).filter(metric=code), sets, "SUM(count)")
            else:
                first = self._split(day_model, month_model, period, sets, "SUM(count)", metric=code)
            for (_bin, group), values in first.items():
                histo = self._bins.setdefault((period, group), {}).setdefault(code, {})
                for (bin_, key), (n,) in values.items():
                    histo.setdefault(key, []).append((bin_, n or 0))

    def sums(self, period: Period, group: str | None) -> dict:
        hit = self._sums.get((period, group))
        if hit is not None:
            return hit
        aggregates = {name: Sum(name) for name in SUMMED}
        if group is None:
            row = self._rows(HourlyBucket, period).aggregate(**aggregates)
            return {None: {k: v or 0 for k, v in row.items()}}
        return {
            row[group]: {k: row[k] or 0 for k in SUMMED}
            for row in self._rows(HourlyBucket, period).values(group).annotate(**aggregates)
        }

    def _histograms(self, period: Period, metric: str, group: str | None) -> dict:
        code = METRIC_CODE[metric]
        hit = self._bins.get((period, group))
        if hit is not None:
            return hit.get(code, {})
        keys = [group] if group else []
        histo: dict = {}
        for row in self._rows(DurationBin, period).filter(metric=code).values(*keys, "bin").annotate(n=Sum("count")):
            histo.setdefault(row[group] if group else None, []).append((row["bin"], row["n"]))
        return histo

    def durations(self, period: Period, metric: str, group: str | None) -> dict:
        histo = self._histograms(period, metric, group)
        sums = self.sums(period, group)
        out = {}
        for key, pairs in histo.items():
            total = sums.get(key) or {}
            n = total.get(f"{metric}_n") or 0
            if n <= 0:
                continue
            out[key] = Duration(
                n,
                bins.percentile_from_bins(pairs, 0.5),
                bins.percentile_from_bins(pairs, 0.9),
                (total.get(f"{metric}_sum") or 0) / n,
            )
        return out

    def contacts(self, period: Period) -> int:
        if self.filters == Filters() and self.scope.scope in (Scope.ALL, Scope.TEAMS, Scope.ASSIGNED):
            # No contact active after the period (a period ending today): its distinct contacts
            # are those last active on or after its first day, a count of an index range.
            if self._latest is _UNREAD:  # read once for the period and the previous one
                latest = ContactLast.objects.filter(company_id=self.scope.company_id).order_by("-last_day")
                self._latest = latest.values_list("last_day", flat=True).first()
            if self._latest is None or self._latest <= period.last:
                return self._last_active(period.first)
        if self.scope.scope == Scope.TEAMS and self.scope.team_ids:
            # "agent = me OR team IN mine" as the UNION of two index-only ranges, (company, agent,
            # day, contact) and (company, team, day, contact), instead of a BitmapOr over the heap.
            rows = ContactDay.objects.filter(
                self.filters.q(), company_id=self.scope.company_id, local_day__range=(period.first, period.last)
            )
            mine = rows.filter(agent=self.scope.employee_id).values("contact_id")
            return mine.union(rows.filter(team__in=sorted(self.scope.team_ids)).values("contact_id")).count()
        rows = self._rows(ContactDay, period).values("contact_id")
        if connection.features.can_distinct_on_fields:
            # SELECT count(*) FROM (SELECT DISTINCT ON (contact_id) ... ORDER BY contact_id): a
            # DISTINCT ON is always a Unique over sorted rows, never a hash of every contact. For a
            # long period that is an index-only scan of (company, contact, day) in contact order
            # (a year of 1M contact days: ~10x faster than hashing 500k contacts); for a short one
            # the key's range on the day, sorted.
            return rows.order_by("contact_id").distinct("contact_id").count()
        return rows.distinct().count()

    def _last_active(self, first) -> int:
        """The reader's contacts last active on or after ``first`` (ContactLast*), for a period no
        contact's activity goes past. A teams reader's: its teams' (one team: a count of an index
        range) and those of its own outside its teams (usually none: a filter of its range) that
        are not among them."""
        c, me = self.scope.company_id, self.scope.employee_id
        if self.scope.scope == Scope.ALL:
            return ContactLast.objects.filter(company_id=c, last_day__gte=first).count()
        mine = ContactLastAgent.objects.filter(company_id=c, agent=me, last_day__gte=first)
        teams = sorted(self.scope.team_ids) if self.scope.scope == Scope.TEAMS else []
        if not teams:
            return mine.values("contact_id").distinct().count()
        theirs = ContactLastTeam.objects.filter(company_id=c, team__in=teams, last_day__gte=first)
        n = theirs.count() if len(teams) == 1 else theirs.values("contact_id").distinct().count()
        outside = mine.exclude(team__in=teams).filter(~Exists(theirs.filter(contact_id=OuterRef("contact_id"))))
        return n + outside.values("contact_id").distinct().count()

    def heatmap_counts(self, period: Period, metric: str) -> dict:
        kind = TOUCH_CODE[HEATMAP_TOUCH[metric]]
        qs = self._rows(Touch, period).filter(kind=kind)
        hours = self._company_rows(CompanyHour, period) if self.company_wide else self._rows(HourlyBucket, period)
        if metric == "customer_messages":
            qs = hours
            return {
                (r["weekday"], r["local_hour"]): r["n"]
                for r in qs.values("weekday", "local_hour").annotate(n=Sum("customer_messages"))
                if r["n"]
            }
        if metric == "new_conversations":
            qs = hours
            return {
                (r["weekday"], r["local_hour"]): r["n"]
                for r in qs.values("weekday", "local_hour").annotate(n=Sum("new"))
                if r["n"]
            }
        # Active: distinct (conversation, hour) pairs, whatever credits they carry.
        pairs = qs.values_list("weekday", "local_hour", "conversation_id", "at").distinct()
        out: dict = {}
        for weekday, hour, _conversation, _at in pairs:
            out[(weekday, hour)] = out.get((weekday, hour), 0) + 1
        return out


def cell_conversation_ids(scope: ReaderScope, filters: Filters, period: Period, metric: str, weekday: int, hour: int):
    kind = TOUCH_CODE[HEATMAP_TOUCH[metric]]
    return (
        Touch.objects.filter(
            scope.q(),
            filters.q(),
            company_id=scope.company_id,
            kind=kind,
            weekday=weekday,
            local_hour=hour,
            local_day__range=(period.first, period.last),
        )
        .values("conversation_id")
        .distinct()
    )


def _grouped(qs, sets: list[tuple[str, ...]], aggregates: str) -> dict | None:
    """``SELECT <set>, <aggregates> ... GROUP BY <set>`` for every grouping set over the rows of
    ``qs``: {set: {key tuple: aggregate tuple}}. One statement on PostgreSQL (GROUPING SETS;
    ``GROUPING()`` tells the sets apart), one per set elsewhere."""
    compiler = qs.query.get_compiler(connection=connection)
    try:
        where, params = compiler.compile(qs.query.where)
    except EmptyResultSet:
        return None
    table = qs.model._meta.db_table
    columns = sorted({c for s in sets for c in s})
    out: dict = {s: {} for s in sets}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(sets) > 1:
            listed = ", ".join(columns)
            spec = ", ".join("(" + ", ".join(s) + ")" for s in sets)
            # Our own table and column names; every value is a parameter.
            cursor.execute(
                f"SELECT GROUPING({listed}), {listed}, {aggregates} FROM {table} "  # noqa: S608
                f"WHERE {where} GROUP BY GROUPING SETS ({spec})",
                params,
            )
            by_mask = {sum(1 << (len(columns) - 1 - i) for i, c in enumerate(columns) if c not in s): s for s in sets}
            width = len(columns)
            for row in cursor.fetchall():
                s = by_mask[row[0]]
                values = dict(zip(columns, row[1 : 1 + width], strict=True))
                out[s][tuple(_value(c, values[c]) for c in s)] = row[1 + width :]
        else:
            for s in sets:
                listed = ", ".join(s)
                cursor.execute(
                    f"SELECT {listed + ', ' if s else ''}{aggregates} FROM {table} WHERE {where}"  # noqa: S608
                    + (f" GROUP BY {listed}" if s else ""),
                    params,
                )
                for row in cursor.fetchall():
                    out[s][tuple(_value(c, v) for c, v in zip(s, row, strict=False))] = row[len(s) :]
    return out


def whole_months(first: date, last: date) -> tuple[date, date] | None:
    """The whole local months inside the days [first, last], as [first month's first day, the
    first day after the last whole month), or None when none is whole."""
    start = first if first.day == 1 else _next_month(first)
    end = (last + timedelta(days=1)).replace(day=1)
    return (start, end) if start < end else None


def _next_month(day: date) -> date:
    return (day.replace(day=1) + timedelta(days=32)).replace(day=1)


def _merge(parts: list[tuple[int, dict | None]]) -> dict | None:
    """Grouped results of rows added (sign 1) or subtracted (sign -1), key by key."""
    if any(p is None for _sign, p in parts):
        return None
    out: dict = {}
    for sign, part in parts:
        for s, values in part.items():
            merged = out.setdefault(s, {})
            for key, row in values.items():
                have = merged.get(key) or (0,) * len(row)
                merged[key] = tuple((a or 0) + sign * (b or 0) for a, b in zip(have, row, strict=True))
    return out


def _value(column: str, value):
    # A raw cursor on SQLite returns dates as text.
    return date.fromisoformat(value) if column == "local_day" and isinstance(value, str) else value
