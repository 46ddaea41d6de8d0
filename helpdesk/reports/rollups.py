"""Keeping the rollups (models.py) from the event log, in the same transaction as each event.

``on_event`` is the hook ``helpdesk.events.log.record`` calls for every event it writes. It
folds the event into the conversation's facts (facts.py) and adds them to the hourly buckets,
the daily buckets (the same sums per local day), the duration bins (hourly and daily), the
touch rows, the contact days, the company-wide sums (hours, hourly and daily bins without
dimensions) and the month grain (buckets by month and hour of day, bins by month, and by month
and hour) with a few upserts (written by rollup_writes.py). Deleting a conversation replays
its events and subtracts everything it contributed; restoring adds it back. ``recount``
rebuilds a company's rollups from the raw log.
"""

from __future__ import annotations

import json
import time
import zoneinfo
from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from helpdesk.accounts.models import Company, Employee
from helpdesk.events.models import Event

from .facts import Fact, State, fold, is_customer_message, is_human_reply
from .models import (
    ROLLUP_MODELS,
    ConversationStats,
    RollupZone,
)
from .rollup_writes import Accumulator, apply

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


# --- The hook ------------------------------------------------------------------------------

# Events whose facts depend on the conversation's running state (a reply's waits, a resolution's
# time): the hook reads the state first. Every other counted event is written blind, in one
# statement (its state change, if any, is a merge the database does: see _stats_sql).
_NEEDS_STATE = "state"


def on_event(event: Event, conversation) -> list[tuple[str, list]] | None:
    """Fold one event about to be written into the rollups (inside the caller's transaction):
    the upserts to run with the event's INSERT (events.log.record).

    On PostgreSQL they join the event's INSERT as data-modifying CTEs: no statement of its own;
    a reply or a resolution first reads the running state it needs (one query). On SQLite the
    same upserts run as separate in-process statements (no round trips there). A deletion or a
    restore replays the conversation's events and writes at once.
    """
    type_ = event.type
    if type_ == "conversation.deleted":
        _withdraw(event.conversation_id, event.company_id)
        return None
    if type_ == "conversation.restored":
        _reinstate(event.conversation_id, event.company_id)
        return None
    if type_ not in COUNTED or event.conversation_id is None:
        return None
    payload = event.payload
    mode = "keep"  # the state: unchanged (the row is created if missing)
    if type_ == "message.created":
        message = payload.get("message") or {}
        if is_customer_message(message):
            mode = "fill"  # first_customer_at / waiting_since, if not set yet
        elif is_human_reply(message):
            mode = _NEEDS_STATE
        else:
            return None  # notes, system lines and quick answers count for nothing
    elif type_ == "conversation.resolved":
        mode = _NEEDS_STATE
    deleted = conversation.deleted_at is not None
    if mode == _NEEDS_STATE:
        row = ConversationStats.objects.filter(pk=event.conversation_id).values_list("state", "deleted").first()
        state = State.from_json(row[0] if row else None)
        if row is not None:
            deleted = row[1]
        mode = "set"
    else:
        state = State()
    facts = fold(state, type=type_, payload=payload, at=event.created_at, actor_id=event.actor_id)
    acc = Accumulator(event.company_id, company_tz(event.company_id))
    if not deleted:
        acc.add(facts)
    stats = (event.conversation_id, event.company_id, json.dumps(state.to_json()), deleted)
    return acc.statements(stats=stats, mode=mode)


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


# --- Recount ---------------------------------------------------------------------------------


# After a change of zone, the recount waits this long: every process's cached zone (_TZ_TTL)
# has expired by then, so every event from then on lands in the new zone's hours, and the
# recount re-places every event before.
ZONE_SETTLE = _TZ_TTL + 5


def on_timezone_change(company, previous: str) -> None:
    """In the company writer's transaction: mark the figures as being recounted, and queue the
    recount once the change commits."""
    from .tasks import recount_company

    now = timezone.now()
    _zone, created = RollupZone.objects.get_or_create(
        company_id=company.pk, defaults={"timezone": previous, "requested_at": now}
    )
    if not created:
        RollupZone.objects.filter(pk=company.pk).update(requested_at=now)
    forget_tz(company.pk)
    transaction.on_commit(lambda: recount_company.apply_async((company.pk,), countdown=ZONE_SETTLE), robust=True)


def recounting(company_id: int) -> datetime | None:
    """When the figures began being recounted (a change of time zone), or None when they are
    current. Until the recount finishes, the figures are those of the previous zone's hours, plus
    (for up to ZONE_SETTLE seconds after the change and during the recount) events placed in
    the new zone's hours: the page says so."""
    row = RollupZone.objects.filter(pk=company_id).values_list("requested_at", flat=True).first()
    return row


def recount(company_id: int, *, progress: Callable[[str], None] | None = None, batch: int = 2000) -> int:
    """Rebuild a company's rollups from its event log; returns the number of conversations."""
    from helpdesk.conversations.models import Conversation

    forget_tz(company_id)
    tz = company_tz(company_id)
    roles = _RoleCache()
    done = 0
    started = timezone.now()
    with transaction.atomic():
        for model in (*ROLLUP_MODELS, ConversationStats):
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
        # Counted in this zone now; a change asked for after this recount began still waits for its own.
        RollupZone.objects.update_or_create(
            company_id=company_id, defaults={"timezone": tz.key, "recounted_at": timezone.now()}
        )
        RollupZone.objects.filter(pk=company_id, requested_at__lte=started).update(requested_at=None)
    return done
