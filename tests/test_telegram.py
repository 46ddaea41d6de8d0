"""The Telegram channel: updates in by webhook (and polling), replies out by sendMessage.

Against ``tests/fakes/telegram.py`` (the Bot API on 127.0.0.1) with the real
python-telegram-bot, real PostgreSQL and the real Redis broker.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from helpdesk.conversations import actions, secrets, tasks
from helpdesk.conversations.models import Channel, Contact, Conversation, Delivery, DeliveryStatus, Message
from helpdesk.events.models import AuditEntry
from integrations import lease
from integrations.telegram import client as telegram_client
from integrations.telegram import inbound, polling
from integrations.telegram.models import PollState
from integrations.telegram.setup import webhook_secret
from tests.conftest import login
from tests.delivery_kit import drain
from tests.fakes.telegram import fake_telegram as fake_telegram

TOKEN = "123456789:AAEhBOweik9ai2o4sbVX-wQzSOMESECRETTAIL"
SECRET_PART = TOKEN.split(":")[1]


@pytest.fixture
def queue(settings):
    name = f"test-telegram-{os.getpid()}-{time.monotonic_ns()}"
    settings.DELIVERY_QUEUE = name
    yield name
    drain(name)


@pytest.fixture
def fake(fake_telegram, settings):
    settings.TELEGRAM_API_URL = fake_telegram.url
    fake_telegram.add_bot(TOKEN, username="acme_support_bot")
    return fake_telegram


@pytest.fixture
def channel(cast, fake, queue):
    return Channel.objects.create(
        company=cast.acme,
        kind="telegram",
        name="Acme bot",
        team=cast.sales,
        settings={"mode": "webhook", "bot_username": "acme_support_bot"},
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )


def post(client, channel, update, *, secret=None):
    headers = {} if secret is False else {"X-Telegram-Bot-Api-Secret-Token": secret or webhook_secret(channel)}
    body = update if isinstance(update, (str, bytes)) else json.dumps(update)
    return client.post(f"/hooks/telegram/{channel.public_key}/", body, content_type="application/json", headers=headers)


def pushed(fake, update):
    """The update as Telegram sends it (with its update_id); its chat becomes known to the fake."""
    return {"update_id": fake.push_update(TOKEN, update), **update}


# --- Set-up: the webhook is set and removed with the channel ---------------------------------


def test_a_webhook_channel_sets_its_webhook_and_polling_deletes_it(client, cast, fake, settings):
    settings.PUBLIC_URL = "https://help.example.com"
    login(client, cast.alice)
    body = {"kind": "telegram", "name": "Bot", "team": cast.support.pk, "bot_token": TOKEN, "mode": "webhook"}
    response = client.post("/api/v1/channels/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    channel = Channel.objects.get(pk=response.json()["id"])
    hook = fake.webhook(TOKEN)
    assert hook["url"] == f"https://help.example.com/hooks/telegram/{channel.public_key}/"
    assert hook["secret_token"] == webhook_secret(channel) and SECRET_PART not in hook["secret_token"]
    url = f"/api/v1/channels/{channel.pk}/"
    assert client.patch(url, {"mode": "polling"}, content_type="application/json").status_code == 200
    assert fake.webhook(TOKEN) is None
    assert client.patch(url, {"mode": "webhook"}, content_type="application/json").status_code == 200
    assert fake.webhook(TOKEN)["url"].endswith(f"/{channel.public_key}/")


# --- Webhook and inbound ---------------------------------------------------------------------


def test_a_private_message_by_webhook_is_one_conversation_and_the_reply_goes_out(client, cast, channel, fake):
    ann = fake.user("Ann", last_name="Lee", username="ann_lee", language_code="ru")
    response = post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "Where is my order?")))
    assert response.status_code == 200
    conversation = Conversation.objects.get(channel=channel)
    message = conversation.messages.get()
    assert message.body == "Where is my order?"
    assert message.external_id == f"{ann['id']}:1"
    contact = conversation.contact
    assert contact.name == "Ann Lee"
    assert contact.attributes["username"] == "ann_lee" and contact.attributes["language"] == "ru"
    assert contact.identities.get().external_id == str(ann["id"])

    reply = actions.post_reply(conversation, by=cast.bob, body="It left today")
    delivery = Delivery.objects.get(message=reply)
    assert tasks.deliver.run(delivery.pk) == DeliveryStatus.SENT, Delivery.objects.get(pk=delivery.pk).last_error
    (sent,) = fake.sent_to(ann["id"])
    assert (sent.method, sent.text) == ("sendMessage", "It left today")
    delivery.refresh_from_db()
    assert delivery.provider_message_id == f"{ann['id']}:{sent.message['message_id']}"


def test_a_group_message_is_one_conversation_for_the_group_with_the_senders_name(client, channel, fake):
    club = fake.group("Coffee club")
    ann, bo = fake.user("Ann"), fake.user("Bo")
    assert post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "Hi all", chat=club))).status_code == 200
    assert post(client, channel, pushed(fake, fake.text_update(TOKEN, bo, "Hello", chat=club))).status_code == 200
    conversation = Conversation.objects.get(channel=channel)
    assert conversation.contact.name == "Coffee club"
    assert conversation.contact.identities.get().external_id == str(club["id"])
    authors = [m.author_contact.name for m in conversation.messages.order_by("pk")]
    assert authors == ["Ann", "Bo"]


def test_a_reply_in_a_group_conversation_goes_to_the_group(client, cast, channel, fake):
    club = fake.group("Coffee club")
    post(client, channel, pushed(fake, fake.text_update(TOKEN, fake.user("Ann"), "Hi", chat=club)))
    conversation = Conversation.objects.get(channel=channel)
    reply = actions.post_reply(conversation, by=cast.bob, body="Hello, club")
    assert tasks.deliver.run(Delivery.objects.get(message=reply).pk) == DeliveryStatus.SENT
    assert [s.text for s in fake.sent_to(club["id"])] == ["Hello, club"]


@pytest.mark.parametrize("secret", [False, "wrong", "x" * 64])
def test_a_wrong_or_missing_secret_is_403_and_stores_nothing(client, channel, fake, secret):
    response = post(client, channel, pushed(fake, fake.text_update(TOKEN, fake.user("Ann"), "hi")), secret=secret)
    assert response.status_code == 403
    assert (
        not Message.objects.filter(conversation__channel=channel).exists()
        and not Contact.objects.filter(identities__channel=channel).exists()
    )


def test_a_disabled_removed_or_unknown_channel_is_404(client, channel, fake):
    update = pushed(fake, fake.text_update(TOKEN, fake.user("Ann"), "hi"))
    secret = webhook_secret(channel)
    assert client.post("/hooks/telegram/nope/", {}, content_type="application/json").status_code == 404
    Channel.objects.filter(pk=channel.pk).update(archived_at="2026-01-01T00:00Z")
    assert post(client, channel, update, secret=secret).status_code == 404
    assert not Message.objects.filter(conversation__channel=channel).exists()


def test_only_post(client, channel):
    assert client.get(f"/hooks/telegram/{channel.public_key}/").status_code == 405


def test_a_replayed_update_stores_one_message(client, channel, fake):
    update = pushed(fake, fake.text_update(TOKEN, fake.user("Ann"), "once"))
    assert post(client, channel, update).status_code == 200
    assert post(client, channel, update).status_code == 200
    assert Message.objects.filter(conversation__channel=channel).count() == 1


@pytest.mark.parametrize("body", ["{not json", "[" * 5000, '"just a string"', '{"update_id": "x", "message": 5}'])
def test_a_malformed_body_is_200_logged_and_stores_nothing(client, channel, body, caplog):
    caplog.set_level(logging.INFO)
    response = post(client, channel, body)
    assert response.status_code == 200
    assert not Message.objects.filter(conversation__channel=channel).exists()
    assert "telegram" in caplog.text and "Traceback" not in caplog.text


def test_updates_we_dont_handle_are_acknowledged(client, channel, fake):
    ann = fake.user("Ann")
    first = fake.text_update(TOKEN, ann, "hi")
    for update in [fake.edited_update(TOKEN, first["message"], text="edited"), fake.my_chat_member_update(TOKEN, ann)]:
        assert post(client, channel, pushed(fake, update)).status_code == 200
    assert not Message.objects.filter(conversation__channel=channel).exists()


def service_update(fake, user, chat):
    """A group's "Bo joined" service message: a message with no text and no file."""
    update = fake.text_update(TOKEN, user, "x", chat=chat)
    del update["message"]["text"]
    update["message"]["new_chat_members"] = [user]
    return update


def test_messages_with_nothing_to_store_are_acknowledged(client, channel, fake):
    ann, club = fake.user("Ann"), fake.group("Club")
    assert post(client, channel, pushed(fake, service_update(fake, ann, club))).status_code == 200
    nul = pushed(fake, fake.text_update(TOKEN, ann, "bad \x00 text"))
    assert post(client, channel, nul).status_code == 200
    too_long = pushed(fake, fake.text_update(TOKEN, ann, "a" * 100_000))
    assert post(client, channel, too_long).status_code == 200
    assert not Message.objects.filter(conversation__channel=channel).exists()


def test_start_with_a_payload_is_the_contacts_source(client, channel, fake):
    post(client, channel, pushed(fake, fake.start_update(TOKEN, fake.user("Ann"), payload="spring_promo")))
    contact = Conversation.objects.get(channel=channel).contact
    assert contact.attributes["source"] == "spring_promo"


def test_attachments_are_pending_files_with_a_caption_as_text(client, channel, fake):
    ann = fake.user("Ann")
    updates = [
        fake.photo_update(TOKEN, ann, b"\xff\xd8\xff" + b"0" * 2000, caption="My cat", width=800, height=600),
        fake.document_update(TOKEN, ann, b"%PDF-1.4 " * 300, file_name="invoice.pdf"),
        fake.voice_update(TOKEN, ann, b"OggS" * 100),
        fake.sticker_update(TOKEN, ann, b"RIFF" * 50),
    ]
    for update in updates:
        assert post(client, channel, pushed(fake, update)).status_code == 200
    stored = Message.objects.filter(conversation__channel=channel).order_by("pk")
    assert [m.body for m in stored] == ["My cat", "", "", ""]
    files = [(a.name, a.source["kind"], a.status) for m in stored for a in m.attachments.all()]
    assert files == [
        ("photo.jpg", "photo", "pending"),
        ("invoice.pdf", "document", "pending"),
        ("voice.ogg", "voice", "pending"),
        ("sticker.webp", "sticker", "pending"),
    ]


# --- Outbound failures -----------------------------------------------------------------------


@pytest.fixture
def conversation(client, channel, fake):
    ann = fake.user("Ann")
    post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "hi")))
    conversation = Conversation.objects.get(channel=channel)
    conversation.ann = ann
    return conversation


def send_reply(conversation, by) -> Delivery:
    reply = actions.post_reply(conversation, by=by, body="Hello")
    delivery = Delivery.objects.get(message=reply)
    tasks.deliver.run(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def test_a_blocked_bot_fails_permanently_with_telegrams_words(cast, conversation, fake):
    fake.block(TOKEN, conversation.ann["id"])
    delivery = send_reply(conversation, cast.bob)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 1
    assert "bot was blocked by the user" in delivery.last_error


def test_a_chat_that_does_not_exist_fails_permanently(cast, conversation, fake):
    conversation.contact.identities.update(external_id="777000111")
    delivery = send_reply(conversation, cast.bob)
    assert delivery.status == DeliveryStatus.FAILED and "chat not found" in delivery.last_error.lower()


def test_429_is_retried_after_telegrams_retry_after(cast, conversation, fake):
    fake.fail_next(TOKEN, "sendMessage", 429, retry_after=17)
    delivery = send_reply(conversation, cast.bob)
    assert delivery.status == DeliveryStatus.QUEUED
    wait = (delivery.next_attempt_at - delivery.updated_at).total_seconds()
    assert 16 <= wait <= 18
    assert "Too Many Requests" in delivery.last_error or "retry" in delivery.last_error.lower()


def test_a_5xx_is_retryable(cast, conversation, fake):
    fake.fail_next(TOKEN, "sendMessage", 502)
    delivery = send_reply(conversation, cast.bob)
    assert delivery.status == DeliveryStatus.QUEUED and delivery.attempts == 1
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # its backoff is over
    assert tasks.deliver.run(delivery.pk) == DeliveryStatus.SENT
    assert len(fake.sent_to(conversation.ann["id"])) == 1


# --- Never twice: a send whose outcome is unknown waits for a person --------------------------


def expect_no_resend(delivery, fake, chat_id) -> None:
    """Nothing sends it again by itself: the worker's task, the sweeper, a late replay."""
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    assert tasks.deliver.run(delivery.pk) is None
    tasks.sweep_deliveries.run()
    assert tasks.deliver.run(delivery.pk) is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.UNKNOWN
    assert len(fake.sent_to(chat_id)) == 1


def test_an_answer_that_never_comes_leaves_the_send_unknown_until_a_person_retries(cast, conversation, fake, settings):
    """Telegram took the message but answered after the client's read timeout."""
    settings.TELEGRAM_SEND_TIMEOUT = 0.3
    fake.stall_next(TOKEN, "sendMessage", 2.0)
    delivery = send_reply(conversation, cast.bob)
    assert delivery.status == DeliveryStatus.UNKNOWN, delivery.last_error
    assert len(fake.sent_to(conversation.ann["id"])) == 1  # it did arrive
    assert "the text" in delivery.last_error and "may have reached the customer" in delivery.last_error
    assert SECRET_PART not in delivery.last_error
    expect_no_resend(delivery, fake, conversation.ann["id"])

    actions.retry_delivery(delivery, by=cast.bob)  # a person decides to send it again
    assert tasks.deliver.run(delivery.pk) == DeliveryStatus.SENT
    assert len(fake.sent_to(conversation.ann["id"])) == 2


@pytest.mark.parametrize("after", [True, False], ids=["after it took effect", "before it took effect"])
def test_a_connection_lost_before_the_answer_leaves_the_send_unknown(cast, conversation, fake, after):
    """The client can't tell the two apart: either way nobody resends it blindly."""
    fake.drop_next(TOKEN, "sendMessage", after=after)
    delivery = send_reply(conversation, cast.bob)
    assert delivery.status == DeliveryStatus.UNKNOWN and delivery.attempts == 1, delivery.last_error
    assert "may have reached the customer" in delivery.last_error
    assert len(fake.sent_to(conversation.ann["id"])) == int(after)
    assert [call.method for call in fake.calls if call.method == "sendMessage"] == ["sendMessage"]
    if after:
        expect_no_resend(delivery, fake, conversation.ann["id"])


def test_a_refused_connection_sent_nothing_so_it_is_retried_and_sent_once(cast, conversation, fake, settings):
    with socket.socket() as closed:  # a port nobody listens on: the connection is refused
        closed.bind(("127.0.0.1", 0))
        settings.TELEGRAM_API_URL = f"http://127.0.0.1:{closed.getsockname()[1]}"
    delivery = send_reply(conversation, cast.bob)
    assert delivery.status == DeliveryStatus.QUEUED and delivery.attempts == 1
    assert "ConnectError" in delivery.last_error

    settings.TELEGRAM_API_URL = fake.url  # Telegram is reachable again
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # its backoff is over
    assert tasks.deliver.run(delivery.pk) == DeliveryStatus.SENT
    assert [sent.text for sent in fake.sent_to(conversation.ann["id"])] == ["Hello"]


def test_replies_reuse_one_open_connection(cast, conversation, fake):
    """The worker keeps its Bot for the token: three sends, one TCP connection to Telegram."""
    before = fake.connections  # the conversation's webhook update came in over HTTP, not the Bot API
    for _ in range(3):
        assert send_reply(conversation, cast.bob).status == DeliveryStatus.SENT
    assert len(fake.sent) == 3
    assert fake.connections - before == 1


def test_a_revoked_token_fails_permanently_and_the_error_never_holds_the_token(cast, conversation, fake):
    fake.revoke(TOKEN)
    delivery = send_reply(conversation, cast.bob)
    assert delivery.status == DeliveryStatus.FAILED
    assert SECRET_PART not in delivery.last_error and delivery.last_error


# --- Polling ---------------------------------------------------------------------------------


@pytest.fixture
def polled(cast, fake, queue, settings):
    settings.TELEGRAM_POLL_TIMEOUT = 0
    settings.TELEGRAM_POLL_RUN_SECONDS = 0  # one getUpdates per run, unless a test says otherwise
    return Channel.objects.create(
        company=cast.acme,
        kind="telegram",
        name="Acme polled bot",
        team=cast.sales,
        settings={"mode": "polling"},
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )


def stored(channel) -> list[str]:
    return list(Message.objects.filter(conversation__channel=channel).order_by("pk").values_list("body", flat=True))


def test_polling_stores_updates_and_advances_the_offset(polled, fake):
    ann = fake.user("Ann")
    ids = [fake.push_update(TOKEN, fake.text_update(TOKEN, ann, f"m{n}")) for n in range(3)]
    ((channel_id, holder),) = polling.claim_due_channels()
    assert channel_id == polled.pk
    assert polling.claim_due_channels() == []  # queued once, not again while it waits
    assert polling.poll(polled.pk, holder=holder) == 3
    assert stored(polled) == ["m0", "m1", "m2"]
    state = PollState.objects.get(channel=polled)
    assert state.offset == ids[-1] + 1 and state.lease_holder == "" and state.last_error == ""
    assert polling.poll(polled.pk) == 0  # the next call confirms them at Telegram
    assert fake.pending_updates(TOKEN) == []
    assert stored(polled) == ["m0", "m1", "m2"]


def test_a_poll_that_dies_between_storing_and_advancing_stores_nothing_twice(polled, fake, monkeypatch):
    ann = fake.user("Ann")
    for n in range(3):
        fake.push_update(TOKEN, fake.text_update(TOKEN, ann, f"m{n}"))
    real, calls = inbound.receive_update, []

    def dies_after_the_second(channel, update):
        result = real(channel, update)
        calls.append(update["update_id"])
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return result

    monkeypatch.setattr(polling.inbound, "receive_update", dies_after_the_second)
    with pytest.raises(RuntimeError):
        polling.poll(polled.pk)
    state = PollState.objects.get(channel=polled)
    assert state.offset == calls[0] + 1  # the second was stored but not confirmed
    assert state.lease_holder == ""  # given back
    monkeypatch.setattr(polling.inbound, "receive_update", real)
    assert polling.poll(polled.pk) == 2  # the second again, and the third
    assert stored(polled) == ["m0", "m1", "m2"]


def test_an_update_that_cant_be_stored_does_not_stall_polling(polled, fake):
    ann = fake.user("Ann")
    fake.push_update(TOKEN, service_update(fake, ann, fake.group("Club")))
    fake.push_update(TOKEN, fake.text_update(TOKEN, ann, "bad \x00 text"))
    last = fake.push_update(TOKEN, fake.text_update(TOKEN, ann, "after"))
    assert polling.poll(polled.pk) == 3
    assert stored(polled) == ["after"]
    assert PollState.objects.get(channel=polled).offset == last + 1


def test_a_second_poller_does_not_run_while_one_holds_the_lease(polled, fake):
    fake.push_update(TOKEN, fake.text_update(TOKEN, fake.user("Ann"), "hi"))
    state = PollState.objects.create(channel=polled)
    assert lease.take(PollState, state.pk, holder="worker-a", seconds=60)
    assert polling.poll(polled.pk, holder="worker-b") is None
    assert polling.claim_due_channels() == []
    assert not [c for c in fake.calls if c.method == "getUpdates"] and stored(polled) == []
    lease.give_back(PollState, state.pk, holder="worker-a")
    assert polling.poll(polled.pk, holder="worker-b") == 1


def test_the_lease_is_taken_by_one_renewed_by_its_holder_and_taken_over_when_it_runs_out(polled):
    state = PollState.objects.create(channel=polled)
    assert lease.take(PollState, state.pk, holder="a", seconds=60)
    assert not lease.take(PollState, state.pk, holder="b", seconds=60)
    assert lease.take(PollState, state.pk, holder="a", seconds=60)  # renewed
    lease.give_back(PollState, state.pk, holder="b")  # not b's to give
    assert not lease.take(PollState, state.pk, holder="b", seconds=60)
    PollState.objects.filter(pk=state.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert lease.take(PollState, state.pk, holder="b", seconds=60)  # a died: b takes over
    lease.give_back(PollState, state.pk, holder="a")  # a, late, can't release b's lease
    assert PollState.objects.get(pk=state.pk).lease_holder == "b"


def test_a_refused_token_stops_polling_that_channel_and_says_why(polled, fake):
    fake.revoke(TOKEN)
    assert polling.poll(polled.pk) == 0
    state = PollState.objects.get(channel=polled)
    assert state.stopped_at is not None and "did not accept" in state.last_error
    assert polling.claim_due_channels() == []
    polling.poll(polled.pk)  # (a poll already queued) recorded once
    (entry,) = AuditEntry.objects.filter(action="channel.broken")
    assert entry.object_id == str(polled.pk) and "did not accept" in entry.after["reason"]
    polling.restart(polled)
    assert [c for c, _ in polling.claim_due_channels()] == [polled.pk]


def test_telegram_unreachable_backs_off(polled, fake):
    fake.fail_next(TOKEN, "getUpdates", 502)
    assert polling.poll(polled.pk) == 0
    state = PollState.objects.get(channel=polled)
    assert state.failures == 1 and state.retry_at > timezone.now() and state.last_error
    assert polling.claim_due_channels() == []
    PollState.objects.filter(pk=state.pk).update(retry_at=timezone.now())
    fake.push_update(TOKEN, fake.text_update(TOKEN, fake.user("Ann"), "back"))
    assert polling.poll(polled.pk) == 1
    assert PollState.objects.get(pk=state.pk).failures == 0


def test_telegrams_retry_after_sets_the_backoff(polled, fake):
    fake.fail_next(TOKEN, "getUpdates", 429, retry_after=40)
    polling.poll(polled.pk)
    wait = (PollState.objects.get(channel=polled).retry_at - timezone.now()).total_seconds()
    assert 35 < wait <= 40


def test_a_run_keeps_polling_so_messages_seconds_apart_both_arrive_at_once(polled, fake, settings, monkeypatch):
    """One run, no beat tick: getUpdates after getUpdates, each answered as its update arrives."""
    settings.TELEGRAM_POLL_TIMEOUT = 2
    ann, pushed_at, stored_at = fake.user("Ann"), {}, {}
    real = inbound.receive_update

    def timed(channel, update):
        result = real(channel, update)
        stored_at[update["message"]["text"]] = time.monotonic()
        return result

    def push(text):
        pushed_at[text] = time.monotonic()
        fake.push_update(TOKEN, fake.text_update(TOKEN, ann, text))

    monkeypatch.setattr(polling.inbound, "receive_update", timed)
    timers = [threading.Timer(0.5, push, ("first",)), threading.Timer(3.5, push, ("second",))]
    for timer in timers:
        timer.start()
    started = time.monotonic()
    try:
        assert polling.poll(polled.pk, run_seconds=5) == 2
    finally:
        for timer in timers:
            timer.cancel()
            timer.join()
    assert 5 <= time.monotonic() - started < 9  # the run lasted its time, no more
    assert stored(polled) == ["first", "second"]
    for text in ("first", "second"):
        assert stored_at[text] - pushed_at[text] < 1.0, text
    state = PollState.objects.get(channel=polled)
    assert state.lease_holder == "" and fake.pending_updates(TOKEN) == []
    assert len([c for c in fake.calls if c.method == "getUpdates"]) >= 3
    assert fake.connections == 1  # one Bot, one pooled connection for the whole run


def _archive(channel):
    Channel.objects.filter(pk=channel.pk).update(archived_at=timezone.now())


def _remove(channel):
    Channel.objects.filter(pk=channel.pk).update(removed_at=timezone.now())


def _webhook(channel):
    Channel.objects.filter(pk=channel.pk).update(settings={"mode": "webhook"})


def _new_token(channel):
    Channel.objects.filter(pk=channel.pk).update(secrets=secrets.encrypt({"bot_token": "42:another-token"}))


def _taken_over(channel):
    PollState.objects.filter(channel=channel).update(
        lease_holder="worker-b", lease_until=timezone.now() + timedelta(seconds=60)
    )


@pytest.mark.parametrize("change", [_archive, _remove, _webhook, _new_token, _taken_over])
def test_a_run_ends_as_soon_as_its_channel_stops_polling(polled, fake, settings, monkeypatch, change):
    settings.TELEGRAM_POLL_TIMEOUT = 1
    real = inbound.receive_update

    def and_change(channel, update):
        real(channel, update)
        change(polled)

    monkeypatch.setattr(polling.inbound, "receive_update", and_change)
    fake.push_update(TOKEN, fake.text_update(TOKEN, fake.user("Ann"), "last one"))
    started = time.monotonic()
    assert polling.poll(polled.pk, run_seconds=30) == 1
    assert time.monotonic() - started < 3
    assert stored(polled) == ["last one"]
    assert len([c for c in fake.calls if c.method == "getUpdates"]) == 1


def test_a_failing_telegram_ends_the_run_and_backs_off(polled, fake, settings):
    settings.TELEGRAM_POLL_TIMEOUT = 1
    fake.fail_next(TOKEN, "getUpdates", 502)
    started = time.monotonic()
    assert polling.poll(polled.pk, run_seconds=30) == 0
    assert time.monotonic() - started < 3
    assert PollState.objects.get(channel=polled).retry_at > timezone.now()


def test_shutdown_cancels_the_waiting_long_poll_and_starts_no_other(polled, fake, settings):
    settings.TELEGRAM_POLL_TIMEOUT = 20
    timer = threading.Timer(1.0, telegram_client.interrupt)
    timer.start()
    try:
        started = time.monotonic()
        assert polling.poll(polled.pk, run_seconds=60) == 0
        assert time.monotonic() - started < 4
        assert PollState.objects.get(channel=polled).lease_holder == ""
        calls = len(fake.calls)
        assert polling.poll(polled.pk, run_seconds=60) == 0  # a run queued before the shutdown
        assert len(fake.calls) == calls
    finally:
        timer.join()
        telegram_client.stopping.clear()
    fake.push_update(TOKEN, fake.text_update(TOKEN, fake.user("Ann"), "after the restart"))
    settings.TELEGRAM_POLL_TIMEOUT = 0
    assert polling.poll(polled.pk) == 1  # the cancelled request confirmed nothing


def test_a_run_that_ends_on_time_queues_the_next_at_once_and_a_refused_one_does_not(polled, fake, queue, settings):
    from integrations.telegram import tasks as telegram_tasks

    settings.TELEGRAM_POLL_QUEUE = queue
    assert telegram_tasks.poll_telegram.run(polled.pk) == 0
    ((name, (channel_id, holder), _),) = drain(queue)
    assert name == "integrations.telegram.tasks.poll_telegram" and channel_id == polled.pk
    assert PollState.objects.get(channel=polled).lease_holder == holder  # leased for it already
    assert polling.claim_due_channels() == []  # so beat does not queue a second
    fake.revoke(TOKEN)
    assert telegram_tasks.poll_telegram.run(channel_id, holder) == 0
    assert drain(queue) == []


def test_webhook_and_disabled_channels_are_not_polled(polled, channel):
    Channel.objects.filter(pk=polled.pk).update(archived_at=timezone.now())
    assert polling.claim_due_channels() == []


def test_beat_queues_one_poll_per_channel_on_the_broker_and_the_poll_stores(polled, fake, queue, settings):
    from integrations.telegram import tasks as telegram_tasks

    settings.TELEGRAM_POLL_QUEUE = queue
    fake.push_update(TOKEN, fake.text_update(TOKEN, fake.user("Ann"), "via beat"))
    assert telegram_tasks.poll_telegram_channels.run() == 1
    assert telegram_tasks.poll_telegram_channels.run() == 0  # the first is still waiting
    ((name, args, _),) = drain(queue)
    assert name == "integrations.telegram.tasks.poll_telegram"
    assert telegram_tasks.poll_telegram.run(*args) == 1
    assert stored(polled) == ["via beat"]


def test_the_fakes_webhook_reaches_a_real_server_and_is_stored_once(asgi_server, tcast, fake, settings):
    """End to end: the channel is added (setWebhook), Telegram POSTs the update to uvicorn."""
    from helpdesk.accounts import actions as account_actions

    settings.PUBLIC_URL = asgi_server.url
    channel = account_actions.add_channel(
        by=tcast.alice, kind="telegram", name="Bot", team=tcast.sales, values={"bot_token": TOKEN, "mode": "webhook"}
    )
    ann = fake.user("Ann")
    fake.push_update(TOKEN, fake.text_update(TOKEN, ann, "Hello from Telegram"))
    assert fake.wait_for(lambda f: any(d.status == 200 for d in f.webhook_deliveries), timeout=10)
    assert stored(channel) == ["Hello from Telegram"]
    assert [d.status for d in fake.webhook_deliveries] == [200]
