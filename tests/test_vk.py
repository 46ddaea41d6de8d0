"""VK: the Callback API, inbound message_new, delivery by messages.send, and the Bots Long Poll,
against the fake VK server (tests/fakes/vk.py) with the real vk-api library."""

from __future__ import annotations

import logging
import os
import time

import pytest

from helpdesk.conversations import actions, secrets
from helpdesk.conversations import tasks as conversation_tasks
from helpdesk.conversations.models import Channel, Contact, Conversation, Delivery, DeliveryStatus, Message
from tests.delivery_kit import drain
from tests.fakes.vk import tiny_png
from tests.fakes.vk import vk_fake as vk_fake

GROUP = 4242
TOKEN = "vk1.a.community-token-with-a-long-secret-tail-0042"
SECRET = "callback-secret-value"
CODE = "a1b2c3d4"


@pytest.fixture
def vk(vk_fake, settings):
    settings.VK_API_URL = vk_fake.api_url
    vk_fake.add_group(GROUP, TOKEN, name="Acme community")
    vk_fake.add_user(7, "Ivan", "Petrov")
    return vk_fake


@pytest.fixture
def queue(settings):
    name = f"test-vk-{os.getpid()}-{time.monotonic_ns()}"
    settings.DELIVERY_QUEUE = name
    yield name
    drain(name)


def vk_channel(cast, mode="callback") -> Channel:
    return Channel.objects.create(
        company=cast.acme,
        kind="vk",
        name="Community",
        team=cast.sales,
        settings={"group_id": GROUP, "mode": mode, "confirmation": CODE, "group_name": "Acme community"},
        secrets=secrets.encrypt({"access_token": TOKEN, "secret": SECRET}),
    )


@pytest.fixture
def channel(cast, vk, queue):
    return vk_channel(cast)


def hook(channel: Channel) -> str:
    return f"/hooks/vk/{channel.public_key}/"


def post(client, channel, event, **extra):
    return client.post(hook(channel), event, content_type="application/json", **extra)


def signed(event: dict) -> dict:
    return {**event, "secret": SECRET}


def messages_of(channel) -> list[Message]:
    return list(Message.objects.filter(conversation__channel=channel).order_by("pk"))


# --- Callback API ---------------------------------------------------------------------------


def test_confirmation_is_answered_with_the_code_with_or_without_the_secret(client, channel):
    for body in ({"type": "confirmation", "group_id": GROUP}, signed({"type": "confirmation", "group_id": GROUP})):
        response = post(client, channel, body)
        assert (response.status_code, response.content.decode()) == (200, CODE)
    assert post(client, channel, {"type": "confirmation", "group_id": 1}).status_code == 403
    assert post(client, channel, {"type": "confirmation", "group_id": GROUP, "secret": "no"}).status_code == 403


def test_the_fake_vk_confirms_our_server(live_server, channel, vk):
    assert vk.set_callback(GROUP, live_server.url + hook(channel), SECRET, CODE)
    assert vk.set_callback(GROUP, live_server.url + hook(channel), SECRET, CODE, confirmation_secret=False)


def test_a_message_by_callback_is_one_conversation_with_the_name_from_users_get(client, channel, vk):
    event = vk.message_new(GROUP, 7, "Где мой заказ?", photos=[("cat.png", tiny_png())], docs=[("bill.pdf", b"%PDF")])
    response = post(client, channel, event)  # the fake's events carry no secret: sign it
    assert response.status_code == 403
    response = post(client, channel, signed(event))
    assert (response.status_code, response.content) == (200, b"ok")
    (message,) = messages_of(channel)
    assert message.body == "Где мой заказ?"
    files = [(a.source["kind"], a.status) for a in message.attachments.order_by("pk")]
    assert files == [("photo", "pending"), ("doc", "pending")]
    assert message.attachments.order_by("pk").last().name == "bill.pdf"
    assert message.conversation.contact.name == "Ivan Petrov"
    assert message.conversation.contact.identities.get().external_id == "7"
    assert message.external_id == f"7:{event['object']['message']['conversation_message_id']}"
    assert len(vk.calls_of("users.get")) == 1
    post(client, channel, signed(vk.message_new(GROUP, 7, "ещё")))
    assert len(messages_of(channel)) == 2 and len(vk.calls_of("users.get")) == 1  # a known contact: not asked again


def test_vks_retry_of_the_same_event_stores_one_message(client, channel, vk):
    event = signed(vk.message_new(GROUP, 7, "hello"))
    for attempt in range(3):
        assert post(client, channel, event, HTTP_X_RETRY_COUNTER=str(attempt)).content == b"ok"
    assert len(messages_of(channel)) == 1


def test_events_pushed_by_the_fake_over_http_are_stored_once(live_server, channel, vk):
    assert vk.set_callback(GROUP, live_server.url + hook(channel), SECRET, CODE)
    vk.push_event(GROUP, vk.message_new(GROUP, 7, "over the wire"))
    vk.wait_for_deliveries()
    assert [m.body for m in messages_of(channel)] == ["over the wire"]
    assert [(d.type, d.status, d.body) for d in vk.deliveries][-1] == ("message_new", 200, "ok")


def test_a_wrong_secret_or_community_is_403_and_stores_nothing(client, channel, vk, caplog):
    event = vk.message_new(GROUP, 7, "hello")
    assert post(client, channel, {**event, "secret": "wrong"}).status_code == 403
    assert post(client, channel, {**event, "secret": ""}).status_code == 403
    assert post(client, channel, {**signed(event), "group_id": 99}).status_code == 403
    assert post(client, channel, {**signed(event), "group_id": True}).status_code == 403
    assert messages_of(channel) == [] and not Contact.objects.filter(identities__channel=channel).exists()
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b"[" * 5000,
        b'{"type": "message_new", "group_id": 4242, "secret": "callback-secret-value"}',
        b'{"type": "message_new", "group_id": 4242, "secret": "callback-secret-value", '
        b'"object": {"message": {"from_id": "x"}}}',
        b'{"type": "message_typing_state", "group_id": 4242, "secret": "callback-secret-value", "object": {}}',
    ],
)
def test_malformed_or_unhandled_is_ok_and_stores_nothing(client, channel, body, caplog):
    caplog.set_level(logging.INFO)
    response = client.post(hook(channel), body, content_type="application/json")
    assert (response.status_code, response.content) == (200, b"ok")
    assert messages_of(channel) == []
    assert "Traceback" not in caplog.text


def test_only_post_to_an_enabled_callback_channel(client, cast, channel, vk):
    event = signed(vk.message_new(GROUP, 7, "hello"))
    assert client.get(hook(channel)).status_code == 405
    assert client.post("/hooks/vk/nope/", event, content_type="application/json").status_code == 404
    actions_channel = Channel.objects.filter(pk=channel.pk)
    actions_channel.update(archived_at="2026-01-01T00:00:00Z")
    assert post(client, channel, event).status_code == 404
    actions_channel.update(archived_at=None, removed_at="2026-01-01T00:00:00Z")
    assert post(client, channel, event).status_code == 404
    assert messages_of(channel) == []


def test_a_group_chat_is_one_conversation_with_each_member_named(client, channel, vk):
    vk.add_user(8, "Anna", "Smirnova")
    chat = 2_000_000_005
    post(client, channel, signed(vk.message_new(GROUP, 7, "hi all", peer_id=chat)))
    post(client, channel, signed(vk.message_new(GROUP, 8, "hi", peer_id=chat)))
    first, second = messages_of(channel)
    assert first.conversation_id == second.conversation_id
    assert first.conversation.contact.identities.get().external_id == str(chat)
    assert (first.author_contact.name, second.author_contact.name) == ("Ivan Petrov", "Anna Smirnova")


# --- Delivery -------------------------------------------------------------------------------


def conversation_with_ivan(client, channel, vk, peer=None) -> Conversation:
    post(client, channel, signed(vk.message_new(GROUP, 7, "hello", peer_id=peer)))
    return messages_of(channel)[-1].conversation


def test_a_reply_is_sent_with_the_deliverys_key_and_a_resend_posts_nothing_twice(client, cast, channel, vk):
    conversation = conversation_with_ivan(client, channel, vk)
    message = actions.post_reply(conversation, by=cast.bob, body="Уже едет")
    delivery = Delivery.objects.get(message=message)
    assert conversation_tasks.deliver.run(delivery.pk) == DeliveryStatus.SENT
    (sent,) = vk.sent
    assert (sent.peer_id, sent.text, sent.random_id) == (7, "Уже едет", delivery.idempotency_key)
    delivery.refresh_from_db()
    assert delivery.provider_message_id == str(sent.message_id)
    # The worker died after VK took it: the same delivery sent again posts nothing new.
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.QUEUED)
    assert conversation_tasks.deliver.run(delivery.pk) == DeliveryStatus.SENT
    assert len(vk.sent) == 1 and len(vk.calls_of("messages.send")) == 2


def test_a_reply_in_a_group_chat_goes_to_the_chat(client, cast, channel, vk):
    conversation = conversation_with_ivan(client, channel, vk, peer=2_000_000_005)
    delivery = Delivery.objects.get(message=actions.post_reply(conversation, by=cast.bob, body="hi"))
    assert conversation_tasks.deliver.run(delivery.pk) == DeliveryStatus.SENT
    assert vk.sent[0].peer_id == 2_000_000_005


def test_error_901_fails_permanently_and_the_token_is_never_shown(client, cast, channel, vk):
    conversation = conversation_with_ivan(client, channel, vk)
    vk.deny_messages(GROUP, 7)
    delivery = Delivery.objects.get(message=actions.post_reply(conversation, by=cast.bob, body="hi"))
    assert conversation_tasks.deliver.run(delivery.pk) == DeliveryStatus.FAILED
    delivery.refresh_from_db()
    assert delivery.attempts == 1 and "901" in delivery.last_error and TOKEN not in delivery.last_error


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [
        ({"error_code": 6}, 1),
        ({"error_code": 9}, 30),
        ({"error_code": 10}, None),
        ({"error_code": None, "http_status": 502}, None),
        ({"error_code": None, "drop": True}, None),
    ],
)
def test_rate_limits_vk_errors_and_network_failures_are_retried(
    client, cast, channel, vk, settings, fault, retry_after
):
    settings.DELIVERY_RETRY_SECONDS = 5
    conversation = conversation_with_ivan(client, channel, vk)
    delivery = Delivery.objects.get(message=actions.post_reply(conversation, by=cast.bob, body="hi"))
    vk.fail_next("messages.send", **fault)
    started = time.monotonic()
    assert conversation_tasks.deliver.run(delivery.pk) == DeliveryStatus.QUEUED
    assert time.monotonic() - started < 5  # vk-api's own endless retry of error 6 is off
    delivery.refresh_from_db()
    assert TOKEN not in delivery.last_error and vk.sent == []
    wait = (delivery.next_attempt_at - delivery.updated_at).total_seconds()
    assert abs(wait - (retry_after or 5)) < 1


# --- Bots Long Poll -------------------------------------------------------------------------

from integrations import lease  # noqa: E402
from integrations.vk import longpoll  # noqa: E402
from integrations.vk import tasks as vk_tasks  # noqa: E402
from integrations.vk.models import LongPollState  # noqa: E402


@pytest.fixture
def polled(cast, vk, queue):
    return vk_channel(cast, mode="longpoll")


def run(channel, seconds=1.2) -> str:
    return longpoll.poll(channel.pk, run_seconds=seconds, wait=1)


def state_of(channel) -> LongPollState:
    return LongPollState.objects.get(channel=channel)


def test_long_poll_stores_events_and_advances_ts(polled, vk):
    assert run(polled) == "done"  # the first run fetches a server and starts from VK's ts
    vk.push_event(GROUP, vk.message_new(GROUP, 7, "one"))
    vk.push_event(GROUP, vk.message_allow(GROUP, 7))  # not a message: ignored
    vk.push_event(GROUP, vk.message_new(GROUP, 7, "two", photos=[tiny_png()]))
    assert run(polled) == "done"
    assert [m.body.split("\n")[0] for m in messages_of(polled)] == ["one", "two"]
    state = state_of(polled)
    assert state.ts == str(vk.longpoll_ts(GROUP)) and state.last_error == ""
    assert (state.lease_holder, state.lease_until) == ("", None)  # given back
    assert len(vk.calls_of("groups.getLongPollServer")) == 1


def test_failed_1_continues_from_the_new_ts(polled, vk):
    run(polled)
    vk.fail_longpoll(1, ts=vk.longpoll_ts(GROUP))
    assert run(polled) == "done"
    vk.push_event(GROUP, vk.message_new(GROUP, 7, "after"))
    run(polled)
    assert [m.body for m in messages_of(polled)] == ["after"]
    assert len(vk.calls_of("groups.getLongPollServer")) == 1


@pytest.mark.parametrize("failed", [2, 3])
def test_failed_2_and_3_fetch_a_new_key(polled, vk, failed):
    run(polled)
    old_key = state_of(polled).key
    vk.push_event(GROUP, vk.message_new(GROUP, 7, "while the key expired"))
    vk.fail_longpoll(failed)
    run(polled, seconds=2)
    vk.push_event(GROUP, vk.message_new(GROUP, 7, "later"))
    run(polled)
    bodies = [m.body for m in messages_of(polled)]
    # 2 keeps the ts (nothing lost); 3 starts from VK's new ts (VK lost the history itself).
    assert bodies == (["while the key expired", "later"] if failed == 2 else ["later"])
    assert len(vk.calls_of("groups.getLongPollServer")) == 2 and state_of(polled).key != old_key


def test_a_restart_mid_batch_stores_nothing_twice(polled, vk, monkeypatch):
    run(polled)
    for text in ("a", "b", "c"):
        vk.push_event(GROUP, vk.message_new(GROUP, 7, text))
    ts_before = state_of(polled).ts
    real = longpoll.inbound.receive
    seen = []

    def dies_on_the_second(channel, event):
        seen.append(event)
        if len(seen) == 2:
            raise KeyboardInterrupt("the worker was killed")
        return real(channel, event)

    monkeypatch.setattr(longpoll.inbound, "receive", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        run(polled)
    assert state_of(polled).ts == ts_before and [m.body for m in messages_of(polled)] == ["a"]
    monkeypatch.setattr(longpoll.inbound, "receive", real)
    assert run(polled) == "done"  # the lease was given back on the way out
    assert [m.body for m in messages_of(polled)] == ["a", "b", "c"]
    assert state_of(polled).ts == str(vk.longpoll_ts(GROUP))


def test_two_pollers_one_lease(polled, vk):
    state = LongPollState.objects.create(channel=polled)
    assert lease.take(LongPollState, state.pk, holder="another-worker", seconds=60)
    assert run(polled) == "busy"
    assert vk.calls == []  # the second poller asked VK nothing
    lease.give_back(LongPollState, state.pk, holder="another-worker")
    assert run(polled) == "done"


def test_a_revoked_token_stops_the_poller_and_says_why(polled, vk):
    vk.revoke(TOKEN)
    assert run(polled) == "refused"
    state = state_of(polled)
    assert state.last_error.startswith("VK error 5") and TOKEN not in state.last_error
    calls = len(vk.calls)
    assert run(polled) == "refused" and len(vk.calls) == calls  # not asked again with the same token


def test_vk_unreachable_is_recorded_and_backed_off(polled, settings):
    settings.VK_API_URL = "http://127.0.0.1:9/method"
    started = time.monotonic()
    assert run(polled, seconds=2) == "done"
    assert time.monotonic() - started < 5
    assert "could not be reached" in state_of(polled).last_error


def test_disabled_or_callback_channels_are_not_polled(cast, polled, channel, vk):
    assert longpoll.poll(channel.pk) == "off"  # the Callback API one
    Channel.objects.filter(pk=polled.pk).update(archived_at="2026-01-01T00:00:00Z")
    assert longpoll.poll(polled.pk) == "off"
    assert vk.calls == []


def test_the_beat_starts_one_run_per_free_long_poll_channel(cast, polled, channel, vk, settings):
    settings.VK_POLL_QUEUE = f"test-vk-poll-{os.getpid()}-{time.monotonic_ns()}"
    other = vk_channel(cast, mode="longpoll")
    busy = LongPollState.objects.create(channel=other)
    lease.take(LongPollState, busy.pk, holder="someone", seconds=60)
    assert vk_tasks.start_vk_polls.run() == 1
    assert [(name, args) for name, args, _eta in drain(settings.VK_POLL_QUEUE)] == [
        (vk_tasks.poll_vk.name, [polled.pk])
    ]
    from django.conf import settings

    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == vk_tasks.start_vk_polls.name)
    assert entry["schedule"] <= 60


def test_unreadable_credentials_are_a_503_for_vk_and_a_recorded_error_for_the_poller(client, channel, polled, vk):
    Channel.objects.filter(pk__in=[channel.pk, polled.pk]).update(secrets="gAAAAA-not-a-fernet-token")
    assert post(client, channel, signed(vk.message_new(GROUP, 7, "hello"))).status_code == 503
    assert longpoll.poll(polled.pk, run_seconds=1, wait=1) == "unreadable"
    assert "can't be read" in state_of(polled).last_error
    assert messages_of(channel) == [] and vk.calls == []


@pytest.mark.django_db(transaction=True)
def test_two_pollers_at_once_one_polls_the_other_leaves(vk, settings):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from tests.conftest import build_cast

    polled = vk_channel(build_cast(), mode="longpoll")
    LongPollState.objects.create(channel=polled)

    def one_run():
        try:
            return longpoll.poll(polled.pk, run_seconds=1.5, wait=1)
        finally:
            connection.close()

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(lambda _: one_run(), range(2)))
    assert outcomes == ["busy", "done"]
    assert len(vk.calls_of("groups.getLongPollServer")) == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_polls_vk_and_delivers_the_reply(vk, settings):
    from celery.contrib.testing.worker import start_worker

    from smartchat.celery import app
    from tests.conftest import build_cast

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    settings.DELIVERY_QUEUE = f"test-vk-send-{os.getpid()}-{time.monotonic_ns()}"
    settings.VK_POLL_QUEUE = f"test-vk-poll-{os.getpid()}-{time.monotonic_ns()}"
    settings.VK_POLL_RUN_SECONDS, settings.VK_LONGPOLL_WAIT = 5, 1
    cast = build_cast()
    polled = vk_channel(cast, mode="longpoll")
    queues = [settings.DELIVERY_QUEUE, settings.VK_POLL_QUEUE]
    worker = start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, queues=queues, shutdown_timeout=20
    )
    with worker:
        assert vk_tasks.start_vk_polls.run() == 1
        wait_until(lambda: LongPollState.objects.filter(channel=polled).exclude(key="").exists(), "no long poll")
        vk.push_event(GROUP, vk.message_new(GROUP, 7, "Где заказ?"))
        wait_until(lambda: messages_of(polled), "the message was not stored")
        (message,) = messages_of(polled)
        assert message.conversation.contact.name == "Ivan Petrov"
        actions.post_reply(message.conversation, by=cast.bob, body="Едет")
        wait_until(lambda: vk.sent, "the reply was not sent")
    drain(settings.VK_POLL_QUEUE)
    (sent,) = vk.sent
    delivery = Delivery.objects.get(message__body="Едет")
    assert (sent.peer_id, sent.text, sent.random_id) == (7, "Едет", delivery.idempotency_key)
    assert len(messages_of(polled)) == 2


def wait_until(predicate, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not (found := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


def test_a_message_edit_changes_the_stored_text_and_keeps_the_old_one(client, channel, vk):
    event = signed(vk.message_new(GROUP, 7, "helo"))
    post(client, channel, event)
    # message_edit carries the message itself as its object (dev.vk.com/ru/api/community-events/json-schema).
    edited = {**event["object"]["message"], "text": "hello", "update_time": event["object"]["message"]["date"] + 5}
    edit = signed({"type": "message_edit", "group_id": GROUP, "event_id": "e" * 40, "v": "5.199", "object": edited})
    assert post(client, channel, edit).content == b"ok"
    assert post(client, channel, edit).content == b"ok"  # VK's retry: one revision
    (message,) = messages_of(channel)
    assert message.body == "hello" and message.edited_at is not None
    assert list(message.revisions.values_list("body", flat=True)) == ["helo"]
    stranger = {**edited, "conversation_message_id": 999}
    assert post(client, channel, signed({**edit, "object": stranger})).content == b"ok"  # never stored: ignored
    assert message.revisions.count() == 1
