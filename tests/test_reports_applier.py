"""The rollups are kept from the event log after it commits (helpdesk/reports/applier.py).

- A message's transaction writes no statistics: the write path is the event log alone.
- Writers committing out of order (the later event id first, on real PostgreSQL connections):
  each event is applied exactly once, the late one after it commits, never skipped.
- Two appliers at once (threads on their own connections): the lock lets one apply, and the
  figures count every message once.
- A reader's figures include everything committed before the read (it catches up first); it
  waits briefly for a running batch, and not at all behind a recount.
- An applier inside a transaction that wrote events (a test's, or a caller's) applies them once,
  also after that transaction commits and another applier reads on.
- A recount while events wait to be applied counts them once.
- A batch that fails rolls back whole: a reader gets the figures as kept (logged, no error),
  beat's run raises, and the next batch applies what the failed one held.
- Beat runs the applier every few seconds, on the worker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import pytest
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from helpdesk.conversations import actions
from helpdesk.events.log import record
from helpdesk.reports import applier, queries, rollups, tasks
from helpdesk.reports.models import HourlyBucket, RollupPosition
from tests.helpers import HeldTransaction

pytestmark = pytest.mark.django_db(transaction=True)


def needs_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need a database server")


def kept_messages(company) -> int:
    """Customer messages in the rollups as they are now, without catching up."""
    return HourlyBucket.objects.filter(company_id=company.pk).aggregate(n=Sum("customer_messages"))["n"] or 0


def dashboard_messages(reader) -> int:
    return queries.dashboard(reader, queries.Period.parse(reader.company, "today")).tile("customer_messages").current


def write(cast, label: str):
    return actions.receive_message(channel=cast.widget, external_contact_id=f"v-{label}", body=f"hello {label}")


def kept_ratings(company) -> int:
    return HourlyBucket.objects.filter(company_id=company.pk).aggregate(n=Sum("ratings"))["n"] or 0


def rate(conversation) -> None:
    """A rating's event, in the caller's transaction (the actions' own are durable)."""
    record(conversation, "conversation.rated", rating=5, comment="")


@contextmanager
def applier_lock_held(*, by_a_recount: bool = False) -> Iterator[None]:
    """The applier's lock held by another connection (as a recount holds it, with its mark, if
    ``by_a_recount``) for the block."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with applier.recounting() if by_a_recount else nullcontext(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [applier.LOCK_KEY])
            held.set()
            release.wait(20)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [applier.LOCK_KEY])
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        yield
    finally:
        release.set()
        holder.join(20)


def later_transaction() -> None:
    """A transaction on another connection that takes a transaction id and commits."""

    def run() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()")
        connection.close()

    other = threading.Thread(target=run)
    other.start()
    other.join(20)


def test_a_message_writes_no_statistics_on_its_way_in(tcast):
    applier.apply_pending()
    with CaptureQueriesContext(connection) as seen:
        write(tcast, "quiet")
    written = " ".join(q["sql"] for q in seen.captured_queries)
    assert "events_event" in written
    assert "reports_" not in written
    before = kept_messages(tcast.acme)
    assert applier.apply_pending() >= 1
    assert kept_messages(tcast.acme) == before + 1


def test_events_committing_out_of_order_are_each_applied_once(tcast):
    needs_postgres()
    applier.apply_pending()
    base = kept_ratings(tcast.acme)
    first = HeldTransaction(lambda: rate(tcast.conversation), "first").hold()
    second = HeldTransaction(lambda: rate(tcast.conversation), "second").hold()
    applier.apply_pending()
    assert kept_ratings(tcast.acme) == base  # neither has committed
    second.finish()  # the later id commits first
    applier.apply_pending()
    assert kept_ratings(tcast.acme) == base + 1
    first.finish()  # an applier keeping "the highest id applied" would skip it for good
    applier.apply_pending()
    applier.apply_pending()
    assert kept_ratings(tcast.acme) == base + 2


def test_two_appliers_at_once_count_every_message_once(tcast):
    needs_postgres()
    applier.apply_pending()
    base = kept_messages(tcast.acme)
    for i in range(30):
        write(tcast, f"many-{i}")
    results: list = []
    gate = threading.Barrier(2)

    def run() -> None:
        try:
            gate.wait(10)
            results.append(applier.apply_pending(wait=None))
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # One read the events (30 messages, 30 new conversations, and what routing wrote); the
    # other, after it, none.
    assert len(results) == 2 and sorted(results)[0] == 0 and sorted(results)[1] >= 60
    assert kept_messages(tcast.acme) == base + 30


def test_a_reader_sees_what_committed_before_the_read(tcast):
    applier.apply_pending()
    shown = dashboard_messages(tcast.alice)
    write(tcast, "just-now")
    assert kept_messages(tcast.acme) == shown  # no worker ran
    assert dashboard_messages(tcast.alice) == shown + 1


def test_a_reader_does_not_wait_long_for_a_running_applier(tcast):
    needs_postgres()
    with applier_lock_held():
        assert applier.catch_up(wait=0.2) is None  # read what is kept rather than wait on
        assert tasks.apply_statistics() is None  # beat's run has nothing to do: one is running
    assert applier.catch_up(wait=0.2) is not None


def test_a_reader_does_not_wait_behind_a_recount(tcast):
    needs_postgres()
    with applier_lock_held(by_a_recount=True):
        began = time.monotonic()
        assert applier.catch_up(wait=10) is None
        assert time.monotonic() - began < 5  # it read what is kept at once, not after its 10 s
    assert applier.catch_up(wait=0.2) is not None


def test_applying_inside_a_transaction_that_wrote_events_applies_them_once(tcast):
    needs_postgres()
    applier.apply_pending()
    base = kept_ratings(tcast.acme)
    with transaction.atomic():
        rate(tcast.conversation)
        applier.apply_pending()
        applier.apply_pending()  # the same transaction's events are still in flight: read once
        assert kept_ratings(tcast.acme) == base + 1
        rate(tcast.conversation)
        # Another transaction takes a later id and commits: this transaction's own snapshot now
        # leaves it out of the in-progress list, below xmax, i.e. "visible" (on a quiet
        # database it is not: its id is xmax). Its own rows must be read either way.
        later_transaction()
        applier.apply_pending()
        assert kept_ratings(tcast.acme) == base + 2
        rate(tcast.conversation)  # written after the last apply: for the next one, after commit
        later_transaction()
        assert "/" in RollupPosition.objects.get().position
    done: list = []
    other = threading.Thread(target=lambda: (done.append(applier.apply_pending(wait=None)), connection.close()))
    other.start()
    other.join(20)
    assert done == [1]  # the third rating, read by another connection
    assert kept_ratings(tcast.acme) == base + 3
    assert "/" not in RollupPosition.objects.get().position  # the mark goes once that transaction is seen
    assert applier.apply_pending() == 0


def test_a_recount_counts_events_waiting_to_be_applied_once(tcast):
    applier.apply_pending()
    for i in range(3):
        write(tcast, f"waiting-{i}")
    assert rollups.recount(tcast.acme.pk) > 0
    counted = kept_messages(tcast.acme)
    applier.apply_pending()
    assert kept_messages(tcast.acme) == counted
    assert dashboard_messages(tcast.alice) == counted == 4  # the cast's first message and three


def test_beat_applies_the_log_every_few_seconds():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tasks.apply_statistics.name)
    assert entry["schedule"] <= 5
    assert entry["options"]["expires"] >= entry["schedule"]


def test_a_failing_batch_leaves_the_reader_the_figures_as_kept(tcast, client, monkeypatch, caplog):
    applier.apply_pending()
    shown = dashboard_messages(tcast.alice)
    write(tcast, "unlucky")

    def broken(events):
        raise RuntimeError("a fold that fails")

    monkeypatch.setattr(applier, "apply_events", broken)
    client.force_login(tcast.alice.user)
    response = client.get("/api/v1/reports/dashboard", {"period": "today"})
    assert response.status_code == 200
    tiles = {tile["key"]: tile["current"] for tile in response.json()["tiles"]}
    assert tiles["customer_messages"] == shown  # as kept: the batch rolled back whole
    assert "could not apply the event log" in caplog.text
    with pytest.raises(RuntimeError):
        tasks.apply_statistics()  # beat's run raises, so the worker's log shows the failure
    monkeypatch.undo()
    assert dashboard_messages(tcast.alice) == shown + 1  # nothing was lost: the next batch has it
