"""Writing the rollups: facts summed by rollup key (``Accumulator``), and the upserts that add
them to every rollup table (models.py): on PostgreSQL one statement of data-modifying CTEs
when the batch is small, else one statement per table and chunk. applier.py and rollups.py
decide what to write and when (a batch of the log, deletions, the recount); this module only
writes.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from django.db import connection
from django.db.models import Exists, Max, OuterRef, Subquery

from . import bins
from .facts import ACTIVE, CUSTOMER_MESSAGE, DURATIONS, METRIC_CODE, TOUCH_CODE, Fact
from .models import (
    DIMS,
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


def local_hour(at: datetime, tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """(the UTC instant the local hour containing ``at`` starts, that local wall-clock hour)."""
    local = at.astimezone(tz)
    start = local.replace(minute=0, second=0, microsecond=0)  # keeps ``fold``: the right 02:00 on fall-back
    instant = start.astimezone(UTC)
    if instant > at:  # a zone whose hours don't start on the UTC hour's minute (none today) - stay safe
        instant -= timedelta(hours=1)
    return instant, start


BUCKET_FIELDS = {
    "new": "new",
    "reopened": "reopened",
    "resolved": "resolved",
    "snoozed": "snoozed",
    "customer_message": "customer_messages",
    "reply": "replies",
}
KEY_COLS = ["company_id", "at", *DIMS]
PLACE_COLS = ["local_day", "local_hour", "weekday"]
COUNTER_COLS = [
    "new",
    "reopened",
    "resolved",
    "snoozed",
    "customer_messages",
    "replies",
    "first_response_n",
    "first_response_sum",
    "reply_time_n",
    "reply_time_sum",
    "resolution_first_n",
    "resolution_first_sum",
    "resolution_last_n",
    "resolution_last_sum",
    "ratings",
    "ratings_good",
]
_COUNTER_INDEX = {col: i for i, col in enumerate(COUNTER_COLS)}
CONTACT_KEY = ["company_id", "local_day", "contact_id", *DIMS]
DAY_KEY = ["company_id", "local_day", *DIMS]
DAY_BIN_KEY = ["company_id", "metric", "local_day", *DIMS, "bin"]
MONTH_HOUR_KEY = ["company_id", "month", "local_hour", *DIMS]
MONTH_BIN_KEY = ["company_id", "metric", "month", *DIMS, "bin"]
MONTH_HOUR_BIN_KEY = ["company_id", "metric", "month", "local_hour", *DIMS, "bin"]


class Accumulator:
    """Facts summed by rollup key, ready to write in one statement (or one per table)."""

    def __init__(self, company_id: int, tz: zoneinfo.ZoneInfo):
        self.company_id, self.tz = company_id, tz
        self.buckets: dict[tuple, list[float]] = {}
        self.bins: dict[tuple, int] = defaultdict(int)
        self.touches: set[tuple] = set()
        self.contacts: dict[tuple, int] = defaultdict(int)
        self.places: dict[datetime, tuple] = {}

    def _place(self, at: datetime) -> datetime:
        instant, local = local_hour(at, self.tz)
        if instant not in self.places:
            self.places[instant] = (local.date(), local.hour, local.weekday())
        return instant

    def _counters(self, key: tuple) -> list[float]:
        counters = self.buckets.get(key)
        if counters is None:
            counters = self.buckets[key] = [0] * len(COUNTER_COLS)
        return counters

    def add(self, facts: Iterable[Fact], sign: int = 1) -> None:
        index = _COUNTER_INDEX
        for fact in facts:
            s = sign * fact.sign
            hour = self._place(fact.at)
            dims = fact.dims.as_tuple()
            kind = fact.kind
            if kind in TOUCH_CODE:
                if s > 0:
                    self.touches.add((TOUCH_CODE[kind], fact.conversation_id, fact.contact_id, hour, dims))
                if kind == ACTIVE:
                    continue
            counters = self._counters((hour, dims))
            if kind in BUCKET_FIELDS:
                counters[index[BUCKET_FIELDS[kind]]] += s
                if kind == CUSTOMER_MESSAGE:
                    self.contacts[(self.places[hour][0], fact.contact_id, dims)] += s
            elif kind in DURATIONS:
                counters[index[f"{kind}_n"]] += s
                counters[index[f"{kind}_sum"]] += s * fact.value
                self.bins[(hour, dims, METRIC_CODE[kind], bins.bin_of(fact.value))] += s
            elif kind == "rating":
                counters[index["ratings"]] += s
                if fact.value >= 4:
                    counters[index["ratings_good"]] += s

    def days(self) -> dict[tuple, list[float]]:
        """The buckets summed by (local day, dims): the daily rollup's rows."""
        out: dict[tuple, list[float]] = {}
        for (hour, dims), counters in self.buckets.items():
            day = out.setdefault((self.places[hour][0], dims), [0] * len(COUNTER_COLS))
            for i, n in enumerate(counters):
                day[i] += n
        return out

    def day_bins(self) -> dict[tuple, int]:
        """The bins summed by (local day, dims, metric, bin): the daily bins' rows."""
        out: dict[tuple, int] = defaultdict(int)
        for (hour, dims, metric, k), n in self.bins.items():
            out[(self.places[hour][0], dims, metric, k)] += n
        return out

    def last_days(self, by: tuple[int, ...] = ()) -> dict[tuple, object]:
        """The latest local day with customer messages added, per contact (``by`` empty), or per
        the dimensions at those positions of the dims and contact ((0,): team; (2, 0): agent and
        team), none (0) in the first left out: the ContactLast* rows (a withdrawal recomputes
        them instead: ``apply``)."""
        out: dict[tuple, object] = {}
        for (day, contact, dims), n in self.contacts.items():
            if n <= 0 or (by and not dims[by[0]]):
                continue
            key = (*(dims[i] for i in by), contact)
            if key not in out or out[key] < day:
                out[key] = day
        return out

    def rows(self) -> dict[str, list[tuple]]:
        c, places = self.company_id, self.places
        return {
            "bucket": [
                (c, hour, *dims, *places[hour], *counters)
                for (hour, dims), counters in self.buckets.items()
                if any(counters)
            ],
            "day": [(c, day, *dims, *counters) for (day, dims), counters in self.days().items() if any(counters)],
            "bin": [
                (c, hour, *dims, *places[hour], metric, k, n) for (hour, dims, metric, k), n in self.bins.items() if n
            ],
            "daybin": [(c, metric, day, *dims, k, n) for (day, dims, metric, k), n in self.day_bins().items() if n],
            "touch": [
                (c, hour, *dims, *places[hour], kind, conv, contact)
                for (kind, conv, contact, hour, dims) in self.touches
            ],
            "contact": [(c, day, contact, *dims, n) for (day, contact, dims), n in self.contacts.items() if n],
            "contactlast": [(c, *key, day) for key, day in self.last_days().items()],
            "contactlastteam": [(c, *key, day) for key, day in self.last_days((0,)).items()],
            "contactlastagent": [(c, *key, day) for key, day in self.last_days((2, 0)).items()],
            **self.company_rows(),
            **self.month_rows(),
        }

    def month_rows(self) -> dict[str, list[tuple]]:
        """The same sums per local month (its first day) and hour of day: the month grain's rows."""
        c, places = self.company_id, self.places
        hours: dict[tuple, list[float]] = {}
        for (hour, dims), counters in self.buckets.items():
            day, local_hour, _weekday = places[hour]
            total = hours.setdefault((day.replace(day=1), local_hour, dims), [0] * len(COUNTER_COLS))
            for i, n in enumerate(counters):
                total[i] += n
        month_bins: dict[tuple, int] = defaultdict(int)
        hour_bins: dict[tuple, int] = defaultdict(int)
        for (hour, dims, metric, k), n in self.bins.items():
            day, local_hour, _weekday = places[hour]
            month_bins[(metric, day.replace(day=1), dims, k)] += n
            hour_bins[(metric, day.replace(day=1), local_hour, dims, k)] += n
        return {
            "monthhour": [
                (c, month, local_hour, *dims, *counters)
                for (month, local_hour, dims), counters in hours.items()
                if any(counters)
            ],
            "monthbin": [(c, metric, month, *dims, k, n) for (metric, month, dims, k), n in month_bins.items() if n],
            "monthhourbin": [
                (c, metric, month, local_hour, *dims, k, n)
                for (metric, month, local_hour, dims, k), n in hour_bins.items()
                if n
            ],
        }

    def company_rows(self) -> dict[str, list[tuple]]:
        """The same sums over every dimension: the company-wide rollups' rows."""
        c, places = self.company_id, self.places
        hours: dict[datetime, list[float]] = {}
        for (hour, _dims), counters in self.buckets.items():
            total = hours.setdefault(hour, [0] * len(COUNTER_COLS))
            for i, n in enumerate(counters):
                total[i] += n
        hour_bins: dict[tuple, int] = defaultdict(int)
        day_bins: dict[tuple, int] = defaultdict(int)
        for (hour, _dims, metric, k), n in self.bins.items():
            hour_bins[(metric, hour, k)] += n
            day_bins[(metric, places[hour][0], k)] += n
        return {
            "chour": [(c, hour, *places[hour], *counters) for hour, counters in hours.items() if any(counters)],
            "cdaybin": [(c, metric, day, k, n) for (metric, day, k), n in day_bins.items() if n],
            "chourbin": [
                (c, metric, hour, places[hour][0], places[hour][1], k, n)
                for (metric, hour, k), n in hour_bins.items()
                if n
            ],
        }

    def statements(self) -> list[tuple[str, list]]:
        """Everything accumulated as upserts: one per table and chunk of rows."""
        pieces = []
        for table, part in self.rows().items():
            for i in range(0, len(part), 500):
                chunk = part[i : i + 500]
                pieces.append((_insert_sql(table, len(chunk)), [value for row in chunk for value in row]))
        return pieces

    def write(self) -> None:
        """Write the statements: on PostgreSQL in one statement when it is small; otherwise one
        statement per table and chunk."""
        pieces = self.statements()
        if not pieces:
            return
        small = sum(len(params) for _, params in pieces) <= 64 * 30
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql" and small and len(pieces) > 1:
                # Data-modifying CTEs all run, to completion, whether or not the outer query reads them.
                sql = "WITH " + ", ".join(f"w{i} AS ({q})" for i, (q, _) in enumerate(pieces)) + " SELECT 1"
                cursor.execute(sql, [v for _, params in pieces for v in params])
            else:
                for sql, params in pieces:
                    cursor.execute(sql, params)


def apply(company_id: int, facts: list[Fact], tz: zoneinfo.ZoneInfo, *, sign: int = 1) -> None:
    acc = Accumulator(company_id, tz)
    acc.add(facts, sign)
    if sign < 0 and facts:
        Touch.objects.filter(conversation_id=facts[0].conversation_id).delete()
    acc.write()
    if sign < 0 and acc.contacts:
        contacts = {contact for (_day, contact, _dims) in acc.contacts}
        ContactDay.objects.filter(company_id=company_id, n__lte=0).filter(contact_id__in=contacts).delete()
        # Their last days, from the contact days left (none left: no row), over every dimension,
        # per team and per agent.
        for model, dims in ((ContactLast, ()), (ContactLastTeam, ("team",)), (ContactLastAgent, ("agent", "team"))):
            days = ContactDay.objects.filter(company_id=company_id, contact_id=OuterRef("contact_id"))
            days = days.filter(**{dim: OuterRef(dim) for dim in dims})
            lasts = model.objects.filter(company_id=company_id, contact_id__in=contacts)
            lasts.filter(~Exists(days)).delete()
            latest = days.order_by().values("contact_id").annotate(m=Max("local_day")).values("m")
            lasts.update(last_day=Subquery(latest))


_TABLES = {
    # name: (table, columns in the order of Accumulator.rows, the conflict key, the summed columns);
    # a contact's last day ("last_day"): keyed by every column but the last, which takes the later day.
    "bucket": (HourlyBucket._meta.db_table, [*KEY_COLS, *PLACE_COLS, *COUNTER_COLS], KEY_COLS, COUNTER_COLS),
    "day": (DailyBucket._meta.db_table, [*DAY_KEY, *COUNTER_COLS], DAY_KEY, COUNTER_COLS),
    "bin": (
        DurationBin._meta.db_table,
        [*KEY_COLS, *PLACE_COLS, "metric", "bin", "count"],
        [*KEY_COLS, "metric", "bin"],
        ["count"],
    ),
    "daybin": (DailyBin._meta.db_table, [*DAY_BIN_KEY, "count"], DAY_BIN_KEY, ["count"]),
    "touch": (Touch._meta.db_table, [*KEY_COLS, *PLACE_COLS, "kind", "conversation_id", "contact_id"], None, None),
    "contact": (ContactDay._meta.db_table, [*CONTACT_KEY, "n"], CONTACT_KEY, ["n"]),
    "chour": (
        CompanyHour._meta.db_table,
        ["company_id", "at", *PLACE_COLS, *COUNTER_COLS],
        ["company_id", "local_day", "at"],
        COUNTER_COLS,
    ),
    "cdaybin": (
        CompanyDayBin._meta.db_table,
        ["company_id", "metric", "local_day", "bin", "count"],
        ["company_id", "metric", "local_day", "bin"],
        ["count"],
    ),
    "chourbin": (
        CompanyHourBin._meta.db_table,
        ["company_id", "metric", "at", "local_day", "local_hour", "bin", "count"],
        ["company_id", "metric", "local_day", "at", "bin"],
        ["count"],
    ),
    # Not summed: the later of the two days (_insert_sql).
    "contactlast": (ContactLast._meta.db_table, ["company_id", "contact_id", "last_day"], None, "last_day"),
    "contactlastteam": (
        ContactLastTeam._meta.db_table,
        ["company_id", "team", "contact_id", "last_day"],
        None,
        "last_day",
    ),
    "contactlastagent": (
        ContactLastAgent._meta.db_table,
        ["company_id", "agent", "team", "contact_id", "last_day"],
        None,
        "last_day",
    ),
    "monthhour": (MonthHourBucket._meta.db_table, [*MONTH_HOUR_KEY, *COUNTER_COLS], MONTH_HOUR_KEY, COUNTER_COLS),
    "monthbin": (MonthBin._meta.db_table, [*MONTH_BIN_KEY, "count"], MONTH_BIN_KEY, ["count"]),
    "monthhourbin": (MonthHourBin._meta.db_table, [*MONTH_HOUR_BIN_KEY, "count"], MONTH_HOUR_BIN_KEY, ["count"]),
}


@lru_cache(maxsize=256)
def _insert_sql(name: str, n: int) -> str:
    table, cols, key, summed = _TABLES[name]
    one = "(" + ", ".join(["%s"] * len(cols)) + ")"
    # Our own table and column names; every value is a parameter.
    head = f"INSERT INTO {table} ({', '.join(cols)}) VALUES {', '.join([one] * n)}"  # noqa: S608
    if summed == "last_day":  # a contact's last day: the later of the two, not a sum
        return head + (
            f" ON CONFLICT ({', '.join(cols[:-1])}) DO UPDATE SET last_day = EXCLUDED.last_day"
            f" WHERE {table}.last_day < EXCLUDED.last_day"
        )
    if summed is None:
        return head + " ON CONFLICT DO NOTHING"
    updates = ", ".join(f"{col} = {table}.{col} + EXCLUDED.{col}" for col in summed)
    return head + f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
