"""Keeping the rollups from the event log after it commits, in batches: the only writer of the
rollups (models.py) besides the recount, which runs inside it.

A message costs the rollups nothing on its way in: the event log is the queue. The applier reads
every event committed since its position (events.tail: a snapshot position, so an event that
commits late is never skipped and none is read twice), folds each into its conversation's
running state (facts.fold, in event order), sums the facts of the whole batch by rollup key
(rollup_writes.Accumulator) and writes them with one upsert per table, then stores its new
position, all in one transaction: a batch is applied exactly once or not at all.

Who applies: the worker, on beat's ``apply-statistics`` schedule (a few seconds), and every
reader of the figures first (``catch_up``), so a dashboard shows everything committed before it
was opened. One applier runs at a time (a PostgreSQL advisory lock); a reader that finds one
running waits briefly for it, then reads what is kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from helpdesk.events import tail

from .facts import State, fold
from .models import ConversationStats, RollupPosition
from .rollup_writes import Accumulator

log = logging.getLogger(__name__)

# pg_advisory_lock's key for "applying the event log to the rollups" ("smartchat rollups").
LOCK_KEY = 0x5C_0001
# Held by a recount for its whole run (minutes at 1M conversations): a reader doesn't wait then.
RECOUNT_KEY = 0x5C_0002
# How long a reader waits for a running applier before reading what is kept.
CATCH_UP_WAIT = 2.0
# Events folded before the sums are written (bounds the memory of one long backlog).
FLUSH_EVERY = 5000

DELETED, RESTORED = "conversation.deleted", "conversation.restored"


def catch_up(wait: float = CATCH_UP_WAIT) -> int | None:
    """Apply what has committed since the last batch, before figures are read: the number of
    events read, or None when another applier kept the lock past ``wait`` seconds or applying
    failed. A failure is logged and the reader gets the figures as last kept, never an error:
    the batch rolled back whole, and beat's next run (which raises) tries it again."""
    try:
        return apply_pending(wait=wait)
    except Exception:
        log.exception("statistics: could not apply the event log; the figures are as last kept")
        return None


def apply_pending(*, wait: float | None = 0.0, then: Callable[[], Any] | None = None) -> int | None:
    """Apply every event committed since the position, and move the position past them.

    ``wait``: seconds to wait for a running applier (None: as long as it takes); on timeout
    nothing is done and None is returned. ``then`` runs in the same transaction, after the
    batch and before the position is stored (the recount rebuilds a company there).
    """
    if not _lock(wait):
        return None
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql" and not _nested():
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = RollupPosition.objects.filter(pk=1).first()
            events, position = tail.read_since(row.position if row else None)
            applied = apply_events(events)
            if then is not None:
                then()
            if events or row is None or then is not None:
                # Nothing read: the position stays (the next read covers the same empty range).
                RollupPosition.objects.update_or_create(
                    pk=1, defaults={"position": str(position), "applied_at": timezone.now()}
                )
        if applied:
            log.debug("statistics: %s events applied", applied)
        return len(events)
    finally:
        _unlock()


def _nested() -> bool:
    # Inside a caller's transaction (a test's, say) the isolation level is the caller's.
    return connection.in_atomic_block


def _lock(wait: float | None) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: transactions begin IMMEDIATE (settings): one applier holds the database
    deadline = None if wait is None else time.monotonic() + wait
    with connection.cursor() as cursor:
        if wait is None:
            cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
            return True
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            if cursor.fetchone()[0]:
                return True
            if time.monotonic() >= deadline or _recount_running(cursor):
                return False
            time.sleep(0.05)


def _recount_running(cursor) -> bool:
    cursor.execute("SELECT pg_try_advisory_lock_shared(%s)", [RECOUNT_KEY])
    if not cursor.fetchone()[0]:
        return True
    cursor.execute("SELECT pg_advisory_unlock_shared(%s)", [RECOUNT_KEY])
    return False


@contextmanager
def recounting() -> Iterator[None]:
    """Mark a recount as running (RECOUNT_KEY) for the block: readers then read what is kept
    at once instead of waiting for the applier's lock, which the recount holds for its run."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [RECOUNT_KEY])
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [RECOUNT_KEY])
        except DatabaseError:  # a lost connection has let go of its session's locks already
            log.warning("statistics: could not release the recount's mark; the connection is gone")


def _unlock() -> None:
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    except DatabaseError:  # a lost connection has let go of its session's locks already
        log.warning("statistics: could not release the applier's lock; the connection is gone")


def apply_events(events: list) -> int:
    """Fold events (in log order) into the running states and the rollups: the number that
    counted. Deletions and restores replay the conversation's earlier events (rollups.py)."""
    from . import rollups

    counted = [e for e in events if e.conversation_id is not None and e.type in rollups.APPLIED]
    if not counted:
        return 0
    states: dict[int, tuple[State, bool]] = {
        pk: (State.from_json(state), deleted)
        for pk, state, deleted in ConversationStats.objects.filter(
            pk__in={e.conversation_id for e in counted}
        ).values_list("pk", "state", "deleted")
    }
    batch = _Batch(states)
    roles = rollups.RoleCache()
    for n, event in enumerate(counted, 1):
        cid = event.conversation_id
        if event.type in (DELETED, RESTORED):
            batch.flush()
            withdrawn = event.type == DELETED
            state = rollups.set_withdrawn(cid, event.company_id, withdrawn=withdrawn, upto=event.pk)
            if state is not None:
                states[cid] = (state, withdrawn)
            continue
        state, deleted = states.setdefault(cid, (State(), False))
        facts = fold(
            state, type=event.type, payload=event.payload, at=event.created_at, actor_id=event.actor_id, role_of=roles
        )
        if not deleted:
            batch.accumulator(event.company_id).add(facts)
        batch.changed[cid] = event.company_id
        if n % FLUSH_EVERY == 0:
            batch.flush()
    batch.flush()
    return len(counted)


class _Batch:
    """The sums of the events folded since the last flush, per company, and the conversations
    whose running state changed."""

    def __init__(self, states: dict[int, tuple[State, bool]]):
        self.states = states
        self.accumulators: dict[int, Accumulator] = {}
        self.changed: dict[int, int] = {}  # conversation -> company

    def accumulator(self, company_id: int) -> Accumulator:
        from .rollups import company_tz

        acc = self.accumulators.get(company_id)
        if acc is None:
            acc = self.accumulators[company_id] = Accumulator(company_id, company_tz(company_id))
        return acc

    def flush(self) -> None:
        for acc in self.accumulators.values():
            acc.write()
        if self.changed:
            ConversationStats.objects.bulk_create(
                [
                    ConversationStats(
                        conversation_id=cid,
                        company_id=company_id,
                        state=self.states[cid][0].to_json(),
                        deleted=self.states[cid][1],
                    )
                    for cid, company_id in self.changed.items()
                ],
                update_conflicts=True,
                unique_fields=["conversation_id"],
                update_fields=["state"],
            )
        self.accumulators.clear()
        self.changed.clear()
