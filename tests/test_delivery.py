"""Outbound delivery through the worker: the outbox row, one send, retries, order, the sweeper.

The channel is a kind of the tests' own (``Pigeon``) registered with the real registry; the
adapter boundary is the real interface. Real PostgreSQL, and the real Redis broker where a
task is queued (each test reads its own queue back).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from helpdesk.conversations import actions, adapters, tasks
from helpdesk.conversations.actions import delivery as outbox
from helpdesk.conversations.adapters import DeliveryError
from helpdesk.conversations.models import Delivery, DeliveryStatus, Message, QuickAnswer
from helpdesk.errors import ActionError
from helpdesk.events.models import Event
from tests.conftest import login
from tests.delivery_kit import Pigeon, channel_of, conversation_on, drain
from tests.helpers import count_queries, event_types, last_event_id

API = "/api/v1/conversations/"


@pytest.fixture
def queue(settings):
    """A broker queue of this test's own; whatever is left on it is thrown away."""
    name = f"test-delivery-{os.getpid()}-{time.monotonic_ns()}"
    settings.DELIVERY_QUEUE = name
    yield name
    drain(name)


@pytest.fixture
def pigeon(monkeypatch):
    adapter = Pigeon()
    monkeypatch.setitem(adapters._registry, adapter.kind, adapter)
    return adapter


@pytest.fixture
def chat(cast, pigeon, queue):
    """A customer writing to Acme's pigeon-post channel (team Sales, so Bob sees it)."""
    return conversation_on(channel_of(pigeon, cast.acme, cast.sales))


def reply(chat, by, body="Your parcel left today") -> Message:
    return actions.post_reply(chat, by=by, body=body)


def delivery_of(message: Message) -> Delivery:
    return Delivery.objects.get(message=message)


def make_due(delivery: Delivery) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


# --- The outbox row -------------------------------------------------------------------------


def test_a_reply_is_written_with_its_queued_delivery_and_the_event_carries_it(cast, chat):
    mark = last_event_id()
    message = reply(chat, cast.bob)
    delivery = delivery_of(message)
    assert (delivery.status, delivery.attempts, delivery.channel_id, delivery.conversation_id) == (
        DeliveryStatus.QUEUED,
        0,
        chat.channel_id,
        chat.pk,
    )
    event = Event.objects.get(id__gt=mark, type="message.created")
    assert event.payload["message"]["delivery"]["status"] == "queued"
    assert event.payload["message"]["delivery"]["id"] == delivery.pk


def test_the_delivery_and_the_message_commit_or_roll_back_together(cast, chat, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the event log is away")

    monkeypatch.setattr("helpdesk.conversations.actions.replies.events.record", broken)
    with pytest.raises(RuntimeError):
        reply(chat, cast.bob)
    assert not Message.objects.filter(conversation=chat, direction="out").exists()
    assert not Delivery.objects.exists()


def test_notes_and_widget_replies_get_no_delivery(cast, chat):
    actions.add_note(chat, by=cast.bob, body="Courier is late again")
    actions.post_reply(cast.conversation, by=cast.bob, body="On the widget: the socket carries it")
    assert not Delivery.objects.exists()


def test_a_notes_whole_life_queues_nothing_while_a_reply_queues_its_send(
    cast, chat, queue, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        note = actions.add_note(chat, by=cast.alice, body="Refund them quietly", mention_employees=[cast.bob])
        actions.delete_message(note, by=cast.alice)
        actions.restore_message(note, by=cast.alice)
    assert drain(queue) == [] and not Delivery.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        reply(chat, cast.bob)
    assert len(drain(queue)) == 1


def test_deleting_and_restoring_a_sent_reply_keeps_its_delivery_in_the_events(cast, chat, pigeon):
    message = reply(chat, cast.bob)
    actions.send_delivery(delivery_of(message).pk)
    mark = last_event_id()
    actions.delete_message(message, by=cast.alice)
    actions.restore_message(message, by=cast.alice)
    events = Event.objects.filter(id__gt=mark).order_by("id")
    assert [(e.type, e.payload["message"]["delivery"]["status"]) for e in events] == [
        ("message.deleted", "sent"),
        ("message.restored", "sent"),
    ]


def test_a_reply_deleted_while_queued_is_never_sent_and_says_why(
    cast, chat, pigeon, queue, django_capture_on_commit_callbacks
):
    first, second = reply(chat, cast.bob, body="oops"), reply(chat, cast.bob, body="second")
    mark = last_event_id()
    with django_capture_on_commit_callbacks(execute=True):
        actions.delete_message(first, by=cast.alice)
    delivery = delivery_of(first)
    assert delivery.status == DeliveryStatus.FAILED and "deleted" in delivery.last_error
    assert delivery.attempts == 0
    events = Event.objects.filter(id__gt=mark).order_by("id")
    assert [e.type for e in events] == ["delivery.updated", "message.deleted"]
    assert events[0].payload["delivery"]["status"] == "failed" and events[0].payload["message_id"] == first.pk
    assert events[1].payload["message"]["delivery"]["status"] == "failed"  # the thread shows it, with the reason
    # The next one is not held back: it was queued at once, and it goes.
    assert drain(queue) == [("helpdesk.conversations.tasks.deliver", [delivery_of(second).pk], None)]
    assert actions.send_delivery(delivery.pk) is None  # a task already queued for it sends nothing
    assert actions.send_delivery(delivery_of(second).pk) == DeliveryStatus.SENT
    assert [body for _id, _key, body in pigeon.sent] == ["second"]
    with pytest.raises(ActionError):  # and nobody can send it while it stays deleted
        actions.retry_delivery(delivery, by=cast.alice)
    actions.restore_message(first, by=cast.alice)  # restored: a person may send it after all
    actions.retry_delivery(delivery_of(first), by=cast.alice)
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.SENT


def test_a_reply_deleted_while_it_is_being_sent_is_left_to_finish(cast, chat, pigeon):
    message = reply(chat, cast.bob)
    delivery = delivery_of(message)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.SENDING, claimed_at=timezone.now())
    actions.delete_message(message, by=cast.alice)
    assert delivery_of(message).status == DeliveryStatus.SENDING  # it may reach the customer: not hidden


def test_an_automatic_answer_is_delivered_like_a_reply(cast, chat):
    QuickAnswer.objects.create(company=cast.acme, title="Hours", triggers=["opening hours"], answer="9 to 6")
    actions.receive_message(
        channel=chat.channel, external_contact_id="chat-2", body="opening hours", external_id="chat-2:1"
    )
    automatic = Message.objects.get(automatic=True)
    assert delivery_of(automatic).status == DeliveryStatus.QUEUED


def test_the_committed_reply_queues_its_task_on_the_broker(cast, chat, queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message = reply(chat, cast.bob)
    assert drain(queue) == [("helpdesk.conversations.tasks.deliver", [delivery_of(message).pk], None)]


# --- Sending ----------------------------------------------------------------------------------


def test_it_is_sent_once_even_when_the_task_runs_twice(cast, chat, pigeon):
    message = reply(chat, cast.bob)
    delivery = delivery_of(message)
    mark = last_event_id()
    assert tasks.deliver.run(delivery.pk) == DeliveryStatus.SENT
    assert tasks.deliver.run(delivery.pk) is None  # a replayed task (acks_late) claims nothing
    assert pigeon.sent == [(delivery.pk, delivery.pk, "Your parcel left today")]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == ("sent", 1, "pigeon-1")
    assert delivery.sent_at is not None
    assert event_types(chat, after=mark) == ["delivery.updated"]
    event = Event.objects.get(id__gt=mark)
    assert event.payload["message_id"] == message.pk and event.payload["delivery"]["status"] == "sent"


def test_sending_takes_a_fixed_number_of_queries(cast, chat):
    delivery = delivery_of(reply(chat, cast.bob))
    # claim (1 update), read it with its message and channel (1); then the record, in its own
    # transaction (a savepoint and its release inside the test's transaction: 2): lock the
    # conversation (1), mark it sent (1), read it back (1), write the event (1).
    assert count_queries(lambda: actions.send_delivery(delivery.pk)) == 8


def test_a_retryable_failure_waits_then_delivers_once(cast, chat, pigeon, settings):
    settings.DELIVERY_RETRY_SECONDS = 5
    pigeon.script = [DeliveryError("Bad Gateway", permanent=False)]
    delivery = delivery_of(reply(chat, cast.bob))
    before = timezone.now()
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.QUEUED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("queued", 1, "Bad Gateway")
    assert before + timedelta(seconds=4) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=6)
    assert actions.send_delivery(delivery.pk) is None  # too early: not claimed, not sent
    make_due(delivery)
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.SENT
    assert (pigeon.calls, len(pigeon.sent)) == (2, 1)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("sent", 2, "")


def test_the_backoff_doubles(settings):
    settings.DELIVERY_RETRY_SECONDS = 5
    assert [outbox.backoff(n) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert outbox.backoff(30) == outbox.RETRY_MAX_SECONDS


def test_the_providers_retry_after_is_honoured(cast, chat, pigeon, settings):
    settings.DELIVERY_RETRY_SECONDS = 5
    pigeon.script = [DeliveryError("Too Many Requests: retry after 42", permanent=False, retry_after=42)]
    delivery = delivery_of(reply(chat, cast.bob))
    before = timezone.now()
    actions.send_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert before + timedelta(seconds=41) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=43)


def test_the_retry_is_queued_for_its_time(cast, chat, pigeon, queue, django_capture_on_commit_callbacks):
    pigeon.script = [DeliveryError("Too Many Requests", permanent=False, retry_after=30)]
    delivery = delivery_of(reply(chat, cast.bob))
    with django_capture_on_commit_callbacks(execute=True):
        actions.send_delivery(delivery.pk)
    [(name, args, eta)] = drain(queue)
    delivery.refresh_from_db()
    assert (name, args) == ("helpdesk.conversations.tasks.deliver", [delivery.pk])
    assert eta == delivery.next_attempt_at.isoformat()


def test_attempts_are_bounded(cast, chat, pigeon, settings):
    settings.DELIVERY_MAX_ATTEMPTS = 2
    pigeon.script = [DeliveryError("Bad Gateway", permanent=False), DeliveryError("Gateway Timeout", permanent=False)]
    delivery = delivery_of(reply(chat, cast.bob))
    actions.send_delivery(delivery.pk)
    make_due(delivery)
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.FAILED
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("failed", 2, "Gateway Timeout")


def test_an_adapter_bug_is_retried_and_its_text_is_not_kept(cast, chat, pigeon):
    pigeon.script = [ValueError("https://provider.test/bot123:SECRET/sendMessage went wrong")]
    delivery = delivery_of(reply(chat, cast.bob))
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.QUEUED
    delivery.refresh_from_db()
    assert delivery.last_error == "internal error (ValueError)"


def test_a_permanent_failure_fails_at_once_and_shows_the_providers_words(cast, chat, pigeon):
    pigeon.script = [DeliveryError("Forbidden: bot was blocked by the user", permanent=True)]
    message = reply(chat, cast.bob)
    assert actions.send_delivery(delivery_of(message).pk) == DeliveryStatus.FAILED
    delivery = delivery_of(message)
    assert (delivery.status, delivery.attempts, delivery.last_error) == (
        "failed",
        1,
        "Forbidden: bot was blocked by the user",
    )
    event = Event.objects.filter(type="delivery.updated").latest("id")
    assert event.payload["delivery"]["last_error"] == "Forbidden: bot was blocked by the user"
    assert actions.send_delivery(delivery.pk) is None  # failed is final until a person retries


# --- Retry, by a person ----------------------------------------------------------------------


def retry_url(conversation_id: int, message_id: int) -> str:
    return f"{API}{conversation_id}/messages/{message_id}/retry"


def test_retry_sends_a_failed_message_again(client, cast, chat, pigeon):
    pigeon.script = [DeliveryError("Forbidden: bot was blocked by the user", permanent=True)]
    message = reply(chat, cast.bob)
    actions.send_delivery(delivery_of(message).pk)
    login(client, cast.bob)
    mark = last_event_id()
    response = client.post(retry_url(chat.pk, message.pk))
    assert response.status_code == 200, response.content
    assert response.json()["delivery"]["status"] == "queued"
    assert response.json()["delivery"]["attempts"] == 0
    event = Event.objects.get(id__gt=mark)
    seen = (event.type, event.actor_id, event.payload["delivery"]["status"])
    assert seen == ("delivery.updated", cast.bob.pk, "queued")
    assert actions.send_delivery(delivery_of(message).pk) == DeliveryStatus.SENT
    assert len(pigeon.sent) == 1


def test_retry_refuses_a_message_on_its_way_or_sent(client, cast, chat):
    message = reply(chat, cast.bob)
    login(client, cast.bob)
    response = client.post(retry_url(chat.pk, message.pk))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "not_retryable"
    actions.send_delivery(delivery_of(message).pk)
    assert client.post(retry_url(chat.pk, message.pk)).status_code == 400
    note = actions.add_note(chat, by=cast.bob, body="internal")
    assert client.post(retry_url(chat.pk, note.pk)).status_code == 400


def test_retry_answers_404_for_another_companys_message_and_one_out_of_scope(client, cast, chat, pigeon):
    pigeon.script = [DeliveryError("chat not found", permanent=True)]
    message = reply(chat, cast.bob)
    actions.send_delivery(delivery_of(message).pk)
    mark = last_event_id()
    for who in (cast.carol, cast.erin):  # another company; a team that doesn't see Sales' chats
        login(client, who)
        assert client.post(retry_url(chat.pk, message.pk)).status_code == 404
    # A message of one conversation under another's id: 404 too.
    login(client, cast.alice)
    assert client.post(retry_url(cast.conversation.pk, message.pk)).status_code == 404
    assert event_types(after=mark) == []
    assert delivery_of(message).status == DeliveryStatus.FAILED


def test_retry_needs_the_reply_permission(client, cast, chat, pigeon):
    pigeon.script = [DeliveryError("chat not found", permanent=True)]
    message = reply(chat, cast.bob)
    actions.send_delivery(delivery_of(message).pk)
    cast.bob.role.permissions = [p for p in cast.bob.role.permissions if p != "reply"]
    cast.bob.role.save()
    login(client, cast.bob)
    assert client.post(retry_url(chat.pk, message.pk)).status_code == 403
    assert delivery_of(message).status == DeliveryStatus.FAILED


def test_the_thread_shows_each_messages_delivery_in_a_fixed_number_of_queries(client, cast, chat):
    login(client, cast.bob)
    url = f"{API}{chat.pk}/messages/"
    reply(chat, cast.bob)
    few = count_queries(lambda: client.get(url))
    for n in range(5):
        reply(chat, cast.bob, body=f"more {n}")
    assert count_queries(lambda: client.get(url)) == few
    rows = client.get(url).json()["results"]
    assert [r["delivery"]["status"] if r["delivery"] else None for r in rows] == [None] + ["queued"] * 6


# --- Never twice: a worker that died mid-send -------------------------------------------------


def crash_mid_send(delivery: Delivery, settings) -> None:
    """A worker claimed it and died before recording anything, longer ago than the timeout."""
    assert outbox._claim(delivery.pk) is not None
    Delivery.objects.filter(pk=delivery.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.DELIVERY_SENDING_TIMEOUT + 1)
    )


def test_a_stale_send_without_an_idempotency_key_becomes_unknown_and_is_not_resent(cast, chat, pigeon, settings, queue):
    delivery = delivery_of(reply(chat, cast.bob))
    crash_mid_send(delivery, settings)
    mark = last_event_id()
    assert tasks.sweep_deliveries.run() == {"requeued": 0, "lost": 0}
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.UNKNOWN
    assert actions.send_delivery(delivery.pk) is None
    assert pigeon.calls == 0 and drain(queue) == []
    event = Event.objects.get(id__gt=mark)
    assert (event.type, event.payload["delivery"]["status"]) == ("delivery.updated", "unknown")


def test_a_fresh_send_is_left_alone_by_the_sweeper(cast, chat, settings):
    delivery = delivery_of(reply(chat, cast.bob))
    outbox._claim(delivery.pk)
    tasks.sweep_deliveries.run()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENDING


def test_a_stale_send_with_an_idempotency_key_is_sent_again_with_the_same_key(cast, chat, pigeon, settings, queue):
    pigeon.idempotent_sends = True
    delivery = delivery_of(reply(chat, cast.bob))
    crash_mid_send(delivery, settings)
    assert tasks.sweep_deliveries.run() == {"requeued": 1, "lost": 0}
    assert drain(queue) == [("helpdesk.conversations.tasks.deliver", [delivery.pk], None)]
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.SENT
    assert pigeon.sent == [(delivery.pk, delivery.pk, "Your parcel left today")]


def test_an_unknown_send_is_retried_only_by_a_person(client, cast, chat, pigeon, settings):
    message = reply(chat, cast.bob)
    crash_mid_send(delivery_of(message), settings)
    tasks.sweep_deliveries.run()
    login(client, cast.bob)
    assert client.post(retry_url(chat.pk, message.pk)).status_code == 200
    assert actions.send_delivery(delivery_of(message).pk) == DeliveryStatus.SENT


def test_a_send_whose_outcome_is_unknown_waits_for_a_person_without_an_idempotency_key(cast, chat, pigeon, queue):
    pigeon.script = [DeliveryError("No answer to the text: it may have arrived", permanent=False, outcome_unknown=True)]
    delivery = delivery_of(reply(chat, cast.bob))
    mark = last_event_id()
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.UNKNOWN
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("unknown", "No answer to the text: it may have arrived")
    event = Event.objects.get(id__gt=mark)
    assert (event.type, event.payload["delivery"]["status"]) == ("delivery.updated", "unknown")
    make_due(delivery)
    assert actions.send_delivery(delivery.pk) is None
    assert tasks.sweep_deliveries.run() == {"requeued": 0, "lost": 0}
    assert pigeon.calls == 1 and pigeon.sent == []
    actions.retry_delivery(delivery, by=cast.bob)
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.SENT


def test_a_send_whose_outcome_is_unknown_is_retried_with_an_idempotency_key(cast, chat, pigeon):
    pigeon.idempotent_sends = True
    pigeon.script = [DeliveryError("no answer", permanent=False, outcome_unknown=True)]
    delivery = delivery_of(reply(chat, cast.bob))
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.QUEUED
    make_due(delivery)
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.SENT
    assert pigeon.sent == [(delivery.pk, delivery.pk, "Your parcel left today")]


def test_a_stale_send_becoming_unknown_drops_an_earlier_attempts_error(cast, chat, pigeon, settings):
    pigeon.script = [DeliveryError("502 Bad Gateway", permanent=False)]
    delivery = delivery_of(reply(chat, cast.bob))
    assert actions.send_delivery(delivery.pk) == DeliveryStatus.QUEUED
    make_due(delivery)
    crash_mid_send(delivery, settings)
    tasks.sweep_deliveries.run()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("unknown", "")


def test_a_slow_send_that_did_arrive_is_recorded_as_sent(cast, chat, pigeon, settings):
    delivery = delivery_of(reply(chat, cast.bob))
    claimed = outbox._claim(delivery.pk)
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.UNKNOWN)  # the sweeper gave up on it
    outbox._record_sent(claimed, "pigeon-late")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.provider_message_id) == ("sent", "pigeon-late")


# --- Lost tasks -------------------------------------------------------------------------------


def test_a_delivery_whose_task_was_lost_is_queued_again_by_the_sweeper(cast, chat, queue, settings):
    # No on-commit callbacks run here: as if the process died between the commit and the queueing.
    delivery = delivery_of(reply(chat, cast.bob))
    assert tasks.sweep_deliveries.run() == {"requeued": 0, "lost": 0}  # not waiting long enough yet
    Delivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=settings.DELIVERY_SWEEP_AFTER + 1)
    )
    assert tasks.sweep_deliveries.run() == {"requeued": 0, "lost": 1}
    assert drain(queue) == [("helpdesk.conversations.tasks.deliver", [delivery.pk], None)]


def test_the_scheduler_sweeps_deliveries_often():
    from django.conf import settings

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tasks.sweep_deliveries.name)
    assert entry["schedule"] <= 60


# --- Order within a conversation --------------------------------------------------------------


def test_a_later_message_waits_while_an_earlier_one_is_on_its_way(cast, chat, pigeon):
    pigeon.script = [DeliveryError("Bad Gateway", permanent=False)]
    first, second = reply(chat, cast.bob, body="first"), reply(chat, cast.bob, body="second")
    actions.send_delivery(delivery_of(first).pk)  # fails for now: queued again, later
    assert actions.send_delivery(delivery_of(second).pk) is None
    make_due(delivery_of(first))
    actions.send_delivery(delivery_of(first).pk)
    assert actions.send_delivery(delivery_of(second).pk) == DeliveryStatus.SENT
    assert [body for _id, _key, body in pigeon.sent] == ["first", "second"]


def test_an_unknown_earlier_message_holds_the_later_ones_back(cast, chat, pigeon, settings):
    first, second = reply(chat, cast.bob, body="first"), reply(chat, cast.bob, body="second")
    crash_mid_send(delivery_of(first), settings)
    assert actions.send_delivery(delivery_of(second).pk) is None  # still sending (for all we know)
    tasks.sweep_deliveries.run()
    assert actions.send_delivery(delivery_of(second).pk) is None  # unknown: a person decides first
    assert pigeon.sent == []


def test_a_failed_earlier_message_holds_nothing_back(cast, chat, pigeon):
    pigeon.script = [DeliveryError("Bad Request: message is too long", permanent=True)]
    first, second = reply(chat, cast.bob, body="first"), reply(chat, cast.bob, body="second")
    actions.send_delivery(delivery_of(first).pk)
    assert actions.send_delivery(delivery_of(second).pk) == DeliveryStatus.SENT


def test_other_conversations_are_not_held_back(cast, chat, pigeon, settings):
    other = conversation_on(chat.channel, who="chat-9")
    crash_mid_send(delivery_of(reply(chat, cast.bob)), settings)
    assert actions.send_delivery(delivery_of(reply(other, cast.bob)).pk) == DeliveryStatus.SENT


def test_when_one_is_sent_the_next_waiting_one_is_queued(cast, chat, queue, django_capture_on_commit_callbacks):
    first, second = reply(chat, cast.bob, body="first"), reply(chat, cast.bob, body="second")
    with django_capture_on_commit_callbacks(execute=True):
        actions.send_delivery(delivery_of(first).pk)
    assert drain(queue) == [("helpdesk.conversations.tasks.deliver", [delivery_of(second).pk], None)]
