"""The rollups' rules (models.py): which events count, deletions and restores, time zones and the
recount. applier.py reads the event log after it commits and folds each event into its
conversation's facts (facts.py), added to the hourly buckets, the daily buckets (the same sums
per local day), the duration bins (hourly and daily), the touch rows, the contact days, the
company-wide sums and the month grain with a few upserts per batch (rollup_writes.py).
Deleting a conversation replays its events and subtracts everything it contributed; restoring
adds it back. ``recount`` rebuilds a company's rollups from the raw log.
"""

from __future__ import annotations

import time
import zoneinfo
from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from helpdesk.accounts.models import Company, Employee
from helpdesk.events.models import Event

from .facts import Fact, State, fold
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


# --- Deletions and restores (applier.py applies every event, these two included) -----------

# Every event the applier reads from the log: the counted ones, and the two that take a
# conversation's whole contribution out of the rollups and put it back.
APPLIED = COUNTED | {"conversation.deleted", "conversation.restored"}


def _replay(conversation_id: int, upto: int | None) -> tuple[State, list[Fact]]:
    state, out = State(), []
    roles = RoleCache()
    events = Event.objects.filter(conversation_id=conversation_id, type__in=COUNTED)
    if upto is not None:
        events = events.filter(pk__lt=upto)  # what the log held when the deletion was written
    for event in events.order_by("pk").only("type", "payload", "created_at", "actor_id"):
        out += fold(
            state, type=event.type, payload=event.payload, at=event.created_at, actor_id=event.actor_id, role_of=roles
        )
    return state, out


def set_withdrawn(conversation_id: int, company_id: int, *, withdrawn: bool, upto: int | None = None) -> State | None:
    """Take everything a deleted conversation contributed out of the rollups (``withdrawn``), or
    put a restored one's back: its events before ``upto`` replayed. None when it already was
    (a repeated deletion or restore); otherwise its running state, stored."""
    row = ConversationStats.objects.select_for_update().filter(pk=conversation_id).first()
    if row is not None and row.deleted == withdrawn:
        return None
    state, facts = _replay(conversation_id, upto)
    ConversationStats.objects.update_or_create(
        conversation_id=conversation_id,
        defaults={"company_id": company_id, "state": state.to_json(), "deleted": withdrawn},
    )
    apply(company_id, facts, company_tz(company_id), sign=-1 if withdrawn else 1)
    return state


class RoleCache(dict):
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
    """Rebuild a company's rollups from its event log; returns the number of conversations.

    It runs inside the applier (applier.apply_pending), holding its lock: what committed
    before is applied first, the company is rebuilt from the same snapshot of the log, and the
    applier's position moves past it in the same transaction, so nothing is counted twice."""
    from . import applier

    done: list[int] = []
    with applier.recounting():
        applier.apply_pending(wait=None, then=lambda: done.append(_rebuild(company_id, progress, batch)))
    return done[0]


def _rebuild(company_id: int, progress: Callable[[str], None] | None, batch: int) -> int:
    from helpdesk.conversations.models import Conversation

    forget_tz(company_id)
    tz = company_tz(company_id)
    roles = RoleCache()
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
