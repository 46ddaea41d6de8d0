"""Keeping the rollups (models.py) from the event log, in the same transaction as each event.

``on_event`` is the hook ``helpdesk.events.log.record`` calls for every event it writes. It
folds the event into the conversation's facts (facts.py) and adds them to the hourly buckets,
the duration bins and the touch rows with a few upserts. Deleting a conversation replays its
events and subtracts everything it contributed; restoring adds it back. ``recount`` rebuilds
a company's rollups from the raw log.
"""

from __future__ import annotations

import time
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction

from helpdesk.accounts.models import Company, Employee
from helpdesk.events.models import Event

from . import bins
from .facts import (
    ACTIVE,
    DURATIONS,
    METRIC_CODE,
    TOUCH_CODE,
    Fact,
    State,
    fold,
    is_customer_message,
    is_human_reply,
)
from .models import ConversationStats, DurationBin, HourlyBucket, Touch

COUNTED = frozenset(
    {
        "conversation.created",
        "message.created",
        "conversation.reopened",
        "conversation.snoozed",
        "conversation.resolved",
        "conversation.rated",
    }
)

# --- Time zones: a company's zone, cached briefly (a change of zone needs a recount anyway) ---

_TZ_CACHE: dict[int, tuple[float, zoneinfo.ZoneInfo]] = {}
_TZ_TTL = 60.0


def company_tz(company_id: int) -> zoneinfo.ZoneInfo:
    now = time.monotonic()
    hit = _TZ_CACHE.get(company_id)
    if hit and now - hit[0] < _TZ_TTL:
        return hit[1]
    name = Company.objects.filter(pk=company_id).values_list("timezone", flat=True).first() or "UTC"
    tz = zoneinfo.ZoneInfo(name)
    _TZ_CACHE[company_id] = (now, tz)
    return tz


def forget_tz(company_id: int | None = None) -> None:
    if company_id is None:
        _TZ_CACHE.clear()
    else:
        _TZ_CACHE.pop(company_id, None)


def local_hour(at: datetime, tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """(the UTC instant the local hour containing ``at`` starts, that local wall-clock hour)."""
    local = at.astimezone(tz)
    start = local.replace(minute=0, second=0, microsecond=0)  # keeps ``fold``: the right 02:00 on fall-back
    instant = start.astimezone(UTC)
    if instant > at:  # a zone whose hours don't start on the UTC hour's minute (none today) - stay safe
        instant -= timedelta(hours=1)
    return instant, start


# --- The hook ------------------------------------------------------------------------------


def on_event(event: Event, conversation) -> None:
    """Fold one just-written event into the rollups (inside the caller's transaction)."""
    type_ = event.type
    if type_ == "conversation.deleted":
        _withdraw(event.conversation_id, event.company_id)
        return
    if type_ == "conversation.restored":
        _reinstate(event.conversation_id, event.company_id)
        return
    if type_ not in COUNTED or event.conversation_id is None:
        return
    if type_ == "message.created":
        message = event.payload.get("message") or {}
        if not (is_customer_message(message) or is_human_reply(message)):
            return  # notes, system lines and quick answers count for nothing
    row = ConversationStats.objects.filter(pk=event.conversation_id).first()
    state = State.from_json(row.state if row else None)
    before = state.to_json()
    facts = fold(state, type=type_, payload=event.payload, at=event.created_at, actor_id=event.actor_id)
    after = state.to_json()
    if row is None:
        ConversationStats.objects.create(
            conversation_id=event.conversation_id,
            company_id=event.company_id,
            state=after,
            deleted=conversation.deleted_at is not None,
        )
        deleted = conversation.deleted_at is not None
    else:
        deleted = row.deleted
        if after != before:
            ConversationStats.objects.filter(pk=row.pk).update(state=after)
    if facts and not deleted:
        apply(event.company_id, facts, company_tz(event.company_id))


def _replay(conversation_id: int) -> tuple[State, list[Fact]]:
    state, out = State(), []
    roles = _RoleCache()
    events = Event.objects.filter(conversation_id=conversation_id, type__in=COUNTED).order_by("pk")
    for event in events.only("type", "payload", "created_at", "actor_id"):
        out += fold(
            state, type=event.type, payload=event.payload, at=event.created_at, actor_id=event.actor_id, role_of=roles
        )
    return state, out


def _withdraw(conversation_id: int, company_id: int) -> None:
    row = ConversationStats.objects.select_for_update().filter(pk=conversation_id).first()
    if row is not None and row.deleted:
        return
    state, facts = _replay(conversation_id)
    ConversationStats.objects.update_or_create(
        conversation_id=conversation_id,
        defaults={"company_id": company_id, "state": state.to_json(), "deleted": True},
    )
    apply(company_id, facts, company_tz(company_id), sign=-1)


def _reinstate(conversation_id: int, company_id: int) -> None:
    row = ConversationStats.objects.select_for_update().filter(pk=conversation_id).first()
    if row is not None and not row.deleted:
        return
    state, facts = _replay(conversation_id)
    ConversationStats.objects.update_or_create(
        conversation_id=conversation_id,
        defaults={"company_id": company_id, "state": state.to_json(), "deleted": False},
    )
    apply(company_id, facts, company_tz(company_id))


class _RoleCache(dict):
    """Current roles, for events recorded before roles were written into them."""

    def __call__(self, employee_id: int) -> int | None:
        if employee_id not in self:
            self[employee_id] = Employee.objects.filter(pk=employee_id).values_list("role_id", flat=True).first()
        return self[employee_id]


# --- Writing ---------------------------------------------------------------------------------

BUCKET_FIELDS = {
    "new": "new",
    "reopened": "reopened",
    "resolved": "resolved",
    "snoozed": "snoozed",
    "customer_message": "customer_messages",
    "reply": "replies",
}
KEY_COLS = ["company_id", "at", "team", "channel", "agent", "role", "priority"]
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


class Accumulator:
    """Facts summed by rollup key, ready to write in one statement per table."""

    def __init__(self, company_id: int, tz: zoneinfo.ZoneInfo):
        self.company_id, self.tz = company_id, tz
        self.buckets: dict[tuple, dict[str, float]] = defaultdict(lambda: dict.fromkeys(COUNTER_COLS, 0))
        self.bins: dict[tuple, int] = defaultdict(int)
        self.touches: set[tuple] = set()
        self.places: dict[datetime, tuple] = {}
        self._hours: dict[datetime, datetime] = {}

    def _place(self, at: datetime) -> datetime:
        instant, local = local_hour(at, self.tz)
        if instant not in self.places:
            self.places[instant] = (local.date(), local.hour, local.weekday())
        return instant

    def add(self, facts: Iterable[Fact], sign: int = 1) -> None:
        for fact in facts:
            s = sign * fact.sign
            hour = self._place(fact.at)
            dims = fact.dims.as_tuple()
            if fact.kind in TOUCH_CODE:
                if s > 0:
                    self.touches.add((TOUCH_CODE[fact.kind], fact.conversation_id, fact.contact_id, hour, dims))
                if fact.kind == ACTIVE:
                    continue
            counters = self.buckets[(hour, dims)]
            if fact.kind in BUCKET_FIELDS:
                counters[BUCKET_FIELDS[fact.kind]] += s
            elif fact.kind in DURATIONS:
                counters[f"{fact.kind}_n"] += s
                counters[f"{fact.kind}_sum"] += s * fact.value
                self.bins[(hour, dims, METRIC_CODE[fact.kind], bins.bin_of(fact.value))] += s
            elif fact.kind == "rating":
                counters["ratings"] += s
                if fact.value >= 4:
                    counters["ratings_good"] += s

    def write(self) -> None:
        c = self.company_id
        bucket_rows = [
            (c, hour, *dims, *self.places[hour], *(counters[col] for col in COUNTER_COLS))
            for (hour, dims), counters in self.buckets.items()
            if any(counters.values())
        ]
        bin_rows = [
            (c, hour, *dims, metric, k, *self.places[hour], n) for (hour, dims, metric, k), n in self.bins.items() if n
        ]
        touch_rows = [
            (c, hour, *dims, *self.places[hour], kind, conv, contact)
            for (kind, conv, contact, hour, dims) in self.touches
        ]
        _upsert(HourlyBucket._meta.db_table, KEY_COLS, COUNTER_COLS, bucket_rows)
        _upsert(DurationBin._meta.db_table, [*KEY_COLS, "metric", "bin"], ["count"], bin_rows)
        _insert_new(Touch._meta.db_table, ["kind", "conversation_id", "contact_id"], touch_rows)


def apply(company_id: int, facts: list[Fact], tz: zoneinfo.ZoneInfo, *, sign: int = 1) -> None:
    acc = Accumulator(company_id, tz)
    acc.add(facts, sign)
    if sign < 0 and facts:
        Touch.objects.filter(conversation_id=facts[0].conversation_id).delete()
    acc.write()


def _upsert(table: str, key: list[str], counters: list[str], rows: list[tuple], chunk: int = 500) -> None:
    if not rows:
        return
    cols = [*key, *PLACE_COLS, *counters]
    updates = ", ".join(f"{col} = {table}.{col} + EXCLUDED.{col}" for col in counters)
    one = "(" + ", ".join(["%s"] * len(cols)) + ")"
    with connection.cursor() as cursor:
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            # Our own table and column names; every value is a parameter.
            head = f"INSERT INTO {table} ({', '.join(cols)}) VALUES "  # noqa: S608
            tail = f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
            sql = head + ", ".join([one] * len(part)) + tail
            cursor.execute(sql, [value for row in part for value in row])


def _insert_new(table: str, extra: list[str], rows: list[tuple], chunk: int = 500) -> None:
    if not rows:
        return
    cols = [*KEY_COLS, *PLACE_COLS, *extra]
    one = "(" + ", ".join(["%s"] * len(cols)) + ")"
    with connection.cursor() as cursor:
        for i in range(0, len(rows), chunk):
            part = rows[i : i + chunk]
            sql = (
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES {', '.join([one] * len(part))} ON CONFLICT DO NOTHING"  # noqa: S608
            )
            cursor.execute(sql, [value for row in part for value in row])


# --- Recount ---------------------------------------------------------------------------------


def recount(company_id: int, *, progress: Callable[[str], None] | None = None, batch: int = 2000) -> int:
    """Rebuild a company's rollups from its event log; returns the number of conversations."""
    from helpdesk.conversations.models import Conversation

    forget_tz(company_id)
    tz = company_tz(company_id)
    roles = _RoleCache()
    done = 0
    with transaction.atomic():
        for model in (HourlyBucket, DurationBin, Touch, ConversationStats):
            model.objects.filter(company_id=company_id).delete()
        conversations = (
            Conversation.objects.filter(company_id=company_id).order_by("pk").values_list("pk", "deleted_at")
        )
        total = conversations.count()
        ids = list(conversations)
        for start in range(0, len(ids), batch):
            part = dict(ids[start : start + batch])
            acc = Accumulator(company_id, tz)
            states: dict[int, State] = {pk: State() for pk in part}
            events = (
                Event.objects.filter(conversation_id__in=list(part), type__in=COUNTED)
                .order_by("conversation_id", "pk")
                .only("conversation_id", "type", "payload", "created_at", "actor_id")
            )
            for event in events.iterator(chunk_size=5000):
                facts = fold(
                    states[event.conversation_id],
                    type=event.type,
                    payload=event.payload,
                    at=event.created_at,
                    actor_id=event.actor_id,
                    role_of=roles,
                )
                if part[event.conversation_id] is None:
                    acc.add(facts)
            acc.write()
            ConversationStats.objects.bulk_create(
                [
                    ConversationStats(
                        conversation_id=pk,
                        company_id=company_id,
                        state=states[pk].to_json(),
                        deleted=deleted is not None,
                    )
                    for pk, deleted in part.items()
                ]
            )
            done += len(part)
            if progress:
                progress(f"company {company_id}: {done}/{total} conversations")
    return done
