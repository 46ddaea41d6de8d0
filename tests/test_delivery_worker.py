"""Outbound delivery end to end: a real Celery worker, a provider on a real socket, the agent's inbox socket."""

from __future__ import annotations

import os
import time

import pytest
from asgiref.sync import sync_to_async
from celery.contrib.testing.worker import start_worker
from channels.db import database_sync_to_async
from django.db import connection

from helpdesk.conversations import actions, adapters, tasks
from helpdesk.conversations.models import Delivery, DeliveryStatus
from smartchat.celery import app
from tests.delivery_kit import Courier, PostOffice, channel_of, conversation_on
from tests.test_sockets import connected_inbox, events_received


@pytest.fixture
def worker_queue(settings):
    # The worker thread opens its own connections; close them after each task so the test
    # database can be dropped. A queue of this test's own: no other worker takes its tasks.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    settings.DELIVERY_QUEUE = f"test-delivery-{os.getpid()}-{time.monotonic_ns()}"
    return settings.DELIVERY_QUEUE


def courier_for(office: PostOffice, monkeypatch) -> Courier:
    adapter = Courier(url=office.url)
    monkeypatch.setitem(adapters._registry, adapter.kind, adapter)
    return adapter


def wait_for(predicate, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not (found := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


@pytest.mark.django_db(transaction=True)
async def test_a_worker_delivers_a_reply_once_through_a_5xx_and_a_429_and_the_agent_sees_it_live(
    tcast, settings, redis_layer, worker_queue, monkeypatch
):
    settings.DELIVERY_RETRY_SECONDS = 1
    office = PostOffice([(502, {"description": "Bad Gateway"}), (429, {"description": "Too Many", "retry_after": 1})])
    courier = courier_for(office, monkeypatch)
    chat = await database_sync_to_async(lambda: conversation_on(channel_of(courier, tcast.acme, tcast.sales)))()
    bob = await connected_inbox(tcast.bob)
    await events_received(bob)  # the customer's message
    worker = start_worker(app, pool="solo", perform_ping_check=False, queues=[worker_queue], shutdown_timeout=20)
    await sync_to_async(worker.__enter__)()  # the worker runs in threads of its own; this loop serves the socket
    try:
        with office:
            message = await database_sync_to_async(actions.post_reply)(chat, by=tcast.bob, body="On its way!")
            seen = []
            deadline = time.monotonic() + 30
            while not any(e["payload"]["delivery"]["status"] == "sent" for e in seen):
                assert time.monotonic() < deadline, f"no sent status reached the agent: {seen}"
                seen += [e for e in await events_received(bob) if e["type"] == "delivery.updated"]
    finally:
        await sync_to_async(worker.__exit__)(None, None, None)
    # The provider said 502, then 429 (wait a second), then took it: the customer got it once.
    assert [r["status"] for r in office.received] == [502, 429, 200]
    assert [r["text"] for r in office.delivered()] == ["On its way!"]
    delivery = await database_sync_to_async(Delivery.objects.get)(message=message)
    assert (delivery.status, delivery.attempts, delivery.provider_message_id) == ("sent", 3, "po-3")
    # The agent watched it: retrying after each failure with the provider's words, then sent.
    assert [(e["payload"]["delivery"]["status"], e["payload"]["delivery"]["last_error"]) for e in seen] == [
        ("queued", "Bad Gateway"),
        ("queued", "Too Many"),
        ("sent", ""),
    ]
    assert all(e["payload"]["message_id"] == message.pk and e["visible"] for e in seen)
    await bob.disconnect()


@pytest.mark.django_db(transaction=True)
def test_a_reply_whose_queueing_was_lost_in_a_crash_is_swept_and_delivered_once(
    tcast, settings, worker_queue, monkeypatch
):
    office = PostOffice()
    courier = courier_for(office, monkeypatch)
    chat = conversation_on(channel_of(courier, tcast.acme, tcast.sales))

    def crash(event):
        raise SystemExit("the web process died right after the commit")

    # The reply commits; the process dies before its task reaches the broker.
    monkeypatch.setattr("integrations.outbound.enqueue", crash)
    with pytest.raises(SystemExit):
        actions.post_reply(chat, by=tcast.bob, body="Sorry for the wait")
    monkeypatch.undo()
    monkeypatch.setitem(adapters._registry, courier.kind, courier)
    delivery = Delivery.objects.get(message__body="Sorry for the wait")  # committed all the same
    assert delivery.status == DeliveryStatus.QUEUED
    settings.DELIVERY_SWEEP_AFTER = 0  # the sweeper's grace has passed
    connection.close()
    with office, start_worker(app, pool="solo", perform_ping_check=False, queues=[worker_queue], shutdown_timeout=20):
        tasks.sweep_deliveries.apply_async(queue=worker_queue)
        wait_for(lambda: Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.SENT, "the sweeper lost it")
        tasks.sweep_deliveries.apply_async(queue=worker_queue)  # a second sweep finds nothing to do
        time.sleep(1)
    assert [r["text"] for r in office.delivered()] == ["Sorry for the wait"]
