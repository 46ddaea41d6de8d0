"""Telegram: consent to personal-data processing, edited messages, and a revoked token.

Against ``tests/fakes/telegram.py`` with the real python-telegram-bot, real PostgreSQL and the
real Redis broker (the bot's answers in webhook mode are Celery tasks, taken from the queue).
"""

from __future__ import annotations

import logging

import pytest
from channels.db import database_sync_to_async
from django.core import mail
from django.utils import translation

from helpdesk.conversations import secrets
from helpdesk.conversations.models import Channel, Contact, ContactConsent, Conversation, Message, MessageRevision
from helpdesk.events.models import AuditEntry, Event
from integrations.telegram import consent, health, polling, tasks
from integrations.telegram.models import HeldUpdate
from tests.conftest import login
from tests.delivery_kit import drain
from tests.fakes.telegram import fake_telegram as fake_telegram
from tests.test_sockets import _clean_layer, connected_inbox  # noqa: F401  (the autouse fixture)
from tests.test_telegram import TOKEN, post, pushed
from tests.test_telegram import fake as fake
from tests.test_telegram import queue as queue

GOOD_TOKEN = "987654321:AAHnewTOKENnewTOKENnewTOKENnewTOKEN12"


def consent_channel(company, team, *, mode="webhook", text="") -> Channel:
    return Channel.objects.create(
        company=company,
        kind="telegram",
        name="Acme bot",
        team=team,
        settings={
            "mode": mode,
            "bot_username": "acme_support_bot",
            "consent_required": True,
            "consent_text": text,
            "consent_version": 3,
        },
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )


@pytest.fixture
def channel(cast, fake, queue):
    return consent_channel(cast.acme, cast.sales)


def answer_calls(queue) -> list:
    """Run the bot's answers the webhook queued for the worker; their calls as queued."""
    queued = drain(queue)
    for name, args, _eta in queued:
        assert name == "integrations.telegram.tasks.bot_calls"
        tasks.bot_calls.run(*args)
    return [call for _name, args, _eta in queued for call in args[1]]


def agent_sees_nothing(client, cast, channel):
    login(client, cast.alice)  # an admin: sees every conversation and contact of the company
    for status in ("open", "resolved", "snoozed"):
        listed = client.get(f"/api/v1/conversations/?view=all&status={status}").json()["results"]
        assert [c for c in listed if c["channel_id"] == channel.pk] == []
    contacts = client.get("/api/v1/contacts/?limit=500").json()["results"]
    assert contacts and "Ann" not in [c["name"] for c in contacts]
    assert "Ann" not in client.get("/inbox/?view=all").content.decode()
    assert not Event.objects.filter(conversation__channel=channel).exists()
    assert not Conversation.objects.filter(channel=channel).exists()


def test_a_first_message_is_held_and_answered_with_the_question(client, cast, channel, fake, queue):
    ann = fake.user("Ann", language_code="ru")
    first = pushed(fake, fake.text_update(TOKEN, ann, "Hello, my order?"))
    assert post(client, channel, first).status_code == 200
    assert post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "It is #42"))).status_code == 200
    assert post(client, channel, first).status_code == 200  # a replay: held once, asked once
    assert [h.update["message"]["text"] for h in HeldUpdate.objects.order_by("pk")] == ["Hello, my order?", "It is #42"]
    assert not Conversation.objects.filter(channel=channel).exists() and not Contact.objects.filter(name="Ann").exists()
    assert not fake.sent  # nothing sent from inside the webhook's request
    calls = answer_calls(queue)
    assert [c["method"] for c in calls] == ["sendMessage"]
    (question,) = fake.sent_to(ann["id"])
    # The default text, in the customer's language (they wrote with language_code "ru").
    assert question.text == consent.text_for(channel, "ru") == consent.say("ru", consent.DEFAULT_TEXT)
    buttons = question.reply_markup["inline_keyboard"][0]
    assert [(b["text"], b["callback_data"]) for b in buttons] == [
        (consent.say("ru", consent.ACCEPT), "consent:accept:3"),
        (consent.say("ru", consent.DECLINE), "consent:decline:3"),
    ]
    agent_sees_nothing(client, cast, channel)


def test_accepting_opens_the_conversation_with_the_held_messages_in_order(client, cast, channel, fake, queue):
    ann = fake.user("Ann", username="ann_p", language_code="en")
    post(client, channel, pushed(fake, fake.start_update(TOKEN, ann, payload="flyer")))
    post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "one")))
    post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "two")))
    answer_calls(queue)
    (question,) = fake.sent_to(ann["id"])
    press = pushed(fake, fake.callback_update(TOKEN, ann, "consent:accept:3", question.message))
    assert post(client, channel, press).status_code == 200
    conversation = Conversation.objects.get(channel=channel)
    assert list(conversation.messages.order_by("pk").values_list("body", flat=True)) == ["/start flyer", "one", "two"]
    assert conversation.contact.attributes["source"] == "flyer"
    (consent,) = ContactConsent.objects.filter(contact=conversation.contact)
    assert (consent.decision, consent.text_version) == ("accepted", "3")
    assert consent.text == question.text and consent.at is not None
    assert HeldUpdate.objects.filter(released_at__isnull=True).count() == 0
    answer_calls(queue)
    assert [c.method for c in fake.calls if c.method in ("answerCallbackQuery", "editMessageText")] == [
        "answerCallbackQuery",
        "editMessageText",
    ]
    assert fake.message(TOKEN, ann["id"], question.message_id).get("reply_markup") is None  # buttons gone

    # Later messages go straight in; the press again (a double click, a replay) changes nothing.
    post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "three")))
    post(client, channel, press)
    post(client, channel, pushed(fake, fake.callback_update(TOKEN, ann, "consent:accept:3", question.message)))
    answer_calls(queue)
    assert conversation.messages.count() == 4
    assert ContactConsent.objects.count() == 1

    # The agent sees the conversation, and the consent in the profile and the contact API.
    login(client, cast.alice)
    assert conversation.pk in [c["id"] for c in client.get("/api/v1/conversations/?view=all").json()["results"]]
    detail = client.get(f"/api/v1/contacts/{conversation.contact_id}/").json()
    assert [(c["decision"], c["text_version"], c["channel_name"]) for c in detail["consents"]] == [
        ("accepted", "3", "Acme bot")
    ]
    page = client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert f'"consents": [{{"channel_id": {channel.pk}' in page


def test_declining_says_goodbye_and_opens_nothing(client, cast, channel, fake, queue):
    ann = fake.user("Ann")
    post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "hi")))
    answer_calls(queue)
    (question,) = fake.sent_to(ann["id"])
    press = pushed(fake, fake.callback_update(TOKEN, ann, "consent:decline:3", question.message))
    post(client, channel, press)
    answer_calls(queue)
    goodbye = fake.sent_to(ann["id"])[-1]
    assert goodbye.method == "sendMessage" and "Goodbye" in goodbye.text
    post(client, channel, press)  # a replay: no second goodbye
    answer_calls(queue)
    assert len([s for s in fake.sent_to(ann["id"]) if s.method == "sendMessage"]) == 2
    assert HeldUpdate.objects.get().dropped_at is not None
    agent_sees_nothing(client, cast, channel)
    # Writing again asks again.
    post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "changed my mind")))
    answer_calls(queue)
    assert fake.sent_to(ann["id"])[-1].reply_markup is not None


def test_stop_withdraws_consent_and_later_messages_are_held_and_asked_again(client, cast, channel, fake, queue):
    ann = fake.user("Ann")
    post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "hi")))
    answer_calls(queue)
    (question,) = fake.sent_to(ann["id"])
    post(client, channel, pushed(fake, fake.callback_update(TOKEN, ann, "consent:accept:3", question.message)))
    answer_calls(queue)
    stop = pushed(fake, fake.text_update(TOKEN, ann, "/stop"))
    post(client, channel, stop)
    post(client, channel, stop)  # a replay: withdrawn once, told once
    answer_calls(queue)
    assert "withdrawn" in fake.sent_to(ann["id"])[-1].text
    contact = Contact.objects.get(identities__channel=channel)
    assert list(contact.consents.order_by("pk").values_list("decision", flat=True)) == ["accepted", "withdrawn"]
    assert Message.objects.filter(channel=channel).count() == 1  # /stop is not a message for the agents
    post(client, channel, pushed(fake, fake.text_update(TOKEN, ann, "after stop")))
    answer_calls(queue)
    assert (
        Message.objects.filter(channel=channel).count() == 1
        and HeldUpdate.objects.filter(released_at__isnull=True).count() == 1
    )
    assert fake.sent_to(ann["id"])[-1].reply_markup["inline_keyboard"][0][0]["callback_data"] == "consent:accept:3"
    login(client, cast.alice)
    assert client.get(f"/api/v1/contacts/{contact.pk}/").json()["consents"][0]["decision"] == "withdrawn"


def test_in_polling_mode_the_poller_asks_the_question_itself(cast, fake, queue, settings):
    settings.TELEGRAM_POLL_TIMEOUT = 0
    settings.TELEGRAM_POLL_RUN_SECONDS = 0  # one getUpdates per run
    channel = consent_channel(cast.acme, cast.sales, mode="polling", text="We keep your data. OK?")
    ann = fake.user("Ann")
    fake.push_update(TOKEN, fake.text_update(TOKEN, ann, "hello"))
    assert polling.poll(channel.pk) == 1
    (question,) = fake.sent_to(ann["id"])
    assert question.text == "We keep your data. OK?" and drain(queue) == []
    fake.push_update(TOKEN, fake.callback_update(TOKEN, ann, "consent:accept:3", question.message))
    assert polling.poll(channel.pk) == 1
    assert list(Message.objects.filter(channel=channel).values_list("body", flat=True)) == ["hello"]
    assert ContactConsent.objects.get().text == "We keep your data. OK?"


def test_the_consent_setting_has_a_version_that_changes_with_the_text(client, cast, fake):
    login(client, cast.alice)
    body = {"kind": "telegram", "name": "Bot", "bot_token": TOKEN, "mode": "polling", "consent_required": True}
    response = client.post("/api/v1/channels/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    settings = response.json()["settings"]
    assert (settings["consent_required"], settings["consent_text"], settings["consent_version"]) == (True, "", 1)
    url = f"/api/v1/channels/{response.json()['id']}/"
    assert (
        client.patch(url, {"name": "Bot 2"}, content_type="application/json").json()["settings"]["consent_version"] == 1
    )
    changed = client.patch(url, {"consent_text": "Our terms"}, content_type="application/json").json()["settings"]
    assert (changed["consent_text"], changed["consent_version"]) == ("Our terms", 2)
    same = client.patch(url, {"consent_required": False}, content_type="application/json").json()["settings"]
    assert (same["consent_required"], same["consent_version"]) == (False, 2)
    page = client.get(f"/settings/channels/{response.json()['id']}/").content.decode()
    assert 'name="consent_text"' in page and 'name="consent_required"' in page


# --- Edited messages -------------------------------------------------------------------------


@pytest.fixture
def plain(cast, fake, queue):
    return Channel.objects.create(
        company=cast.acme,
        kind="telegram",
        name="Plain bot",
        team=cast.sales,
        settings={"mode": "webhook"},
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )


def test_an_edited_message_changes_the_text_keeps_the_old_one_and_tells_the_inbox(client, cast, plain, fake, caplog):
    ann = fake.user("Ann")
    update = pushed(fake, fake.text_update(TOKEN, ann, "Where is my odrer?"))
    post(client, plain, update)
    message = Message.objects.get(channel=plain)
    edit = pushed(fake, fake.edited_update(TOKEN, update["message"], text="Where is my order?"))
    assert post(client, plain, edit).status_code == 200
    assert post(client, plain, edit).status_code == 200  # a replay: one revision
    message.refresh_from_db()
    assert message.body == "Where is my order?" and message.edited_at is not None
    assert list(MessageRevision.objects.values_list("body", flat=True)) == ["Where is my odrer?"]
    (event,) = Event.objects.filter(type="message.edited")
    assert event.payload["message"]["body"] == "Where is my order?" and event.payload["message"]["edited_at"]
    assert event.payload["conversation"]["preview"] == "Where is my order?"
    login(client, cast.alice)
    (shown,) = client.get(f"/api/v1/conversations/{message.conversation_id}/messages/").json()["results"]
    assert shown["body"] == "Where is my order?" and shown["edited_at"]
    # An edit of a message we never stored: logged, nothing changes.
    stranger = fake.text_update(TOKEN, fake.user("Bo"), "never seen")["message"]
    with caplog.at_level(logging.INFO):
        assert post(client, plain, pushed(fake, fake.edited_update(TOKEN, stranger, text="x"))).status_code == 200
    assert "never stored" in caplog.text
    assert MessageRevision.objects.count() == 1 and Message.objects.filter(channel=plain).count() == 1


def test_an_edit_of_a_held_message_is_what_is_stored_on_acceptance(client, cast, channel, fake, queue):
    ann = fake.user("Ann")
    update = pushed(fake, fake.text_update(TOKEN, ann, "helo"))
    post(client, channel, update)
    post(client, channel, pushed(fake, fake.edited_update(TOKEN, update["message"], text="hello")))
    answer_calls(queue)
    (question,) = fake.sent_to(ann["id"])
    post(client, channel, pushed(fake, fake.callback_update(TOKEN, ann, "consent:accept:3", question.message)))
    assert list(Message.objects.filter(channel=channel).values_list("body", flat=True)) == ["hello"]


# --- A revoked token -------------------------------------------------------------------------


async def next_notice(socket, timeout: float = 3.0) -> dict | None:
    """The next notice (not a colleague's presence, not a conversation's event); None if none comes in time."""
    while not await socket.receive_nothing(timeout=timeout):
        message = await socket.receive_json_from()
        if message["type"] not in ("presence", "event"):
            return message
    return None


@pytest.mark.django_db(transaction=True)
async def test_a_refused_token_marks_the_channel_broken_and_tells_the_admins_once(tcast, fake, settings):
    settings.TELEGRAM_POLL_TIMEOUT = 0
    settings.TELEGRAM_POLL_RUN_SECONDS = 0  # one getUpdates per run
    channel = await database_sync_to_async(Channel.objects.create)(
        company=tcast.acme,
        kind="telegram",
        name="Acme polled bot",
        settings={"mode": "polling"},
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )
    alice = await connected_inbox(tcast.alice)  # an admin: manages channels
    bob = await connected_inbox(tcast.bob)  # an agent: doesn't
    fake.revoke(TOKEN)
    await database_sync_to_async(polling.poll)(channel.pk)
    notice = await next_notice(alice)
    assert notice["type"] == "channel.broken" and notice["channel_id"] == channel.pk
    assert notice["url"] == f"/settings/channels/{channel.pk}/" and notice["reason"]
    await database_sync_to_async(polling.restart)(channel)
    await database_sync_to_async(polling.poll)(channel.pk)  # refused again: nobody is told twice
    assert await next_notice(alice, timeout=0.5) is None
    assert await next_notice(bob, timeout=0.1) is None
    assert len(mail.outbox) == 1 and "alice@acme.test" in mail.outbox[0].to and "bob@acme.test" not in mail.outbox[0].to
    count = await database_sync_to_async(AuditEntry.objects.filter(action="channel.broken").count)()
    assert count == 1
    await alice.disconnect()
    await bob.disconnect()


def test_a_broken_channel_shows_in_settings_and_saving_a_working_token_clears_it(client, cast, fake, queue, settings):
    settings.TELEGRAM_POLL_TIMEOUT = 0
    settings.TELEGRAM_POLL_RUN_SECONDS = 0  # one getUpdates per run
    fake.add_bot(GOOD_TOKEN, username="acme_new_bot")
    channel = Channel.objects.create(
        company=cast.acme,
        kind="telegram",
        name="Acme polled bot",
        settings={"mode": "polling"},
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )
    ann = fake.user("Ann")
    post_update = fake.text_update(TOKEN, ann, "kept?")
    fake.revoke(TOKEN)
    assert polling.poll(channel.pk) == 0
    channel.refresh_from_db()
    assert channel.broken_at is not None and channel.broken_reason == "Telegram did not accept the bot token."
    login(client, cast.alice)
    listing = client.get("/settings/channels/").content.decode()
    assert 'data-testid="channel-broken"' in listing
    client.cookies["django_language"] = "ru"
    page = client.get(f"/settings/channels/{channel.pk}/", HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    with translation.override("ru"):
        assert translation.gettext(health.TOKEN_REFUSED) in page
    inbox = client.get("/inbox/").content.decode()
    assert f'"channel_id": {channel.pk}' in inbox  # the inbox's banner for channel managers
    # Saving the same (refused) token again is refused and the channel stays broken.
    url = f"/api/v1/channels/{channel.pk}/"
    assert client.patch(url, {"mode": "polling"}, content_type="application/json").status_code == 400
    response = client.patch(url, {"bot_token": GOOD_TOKEN}, content_type="application/json")
    assert response.status_code == 200, response.content
    channel.refresh_from_db()
    assert channel.broken_at is None and channel.broken_reason == ""
    fake.push_update(GOOD_TOKEN, post_update)
    assert polling.poll(channel.pk) == 1  # polling again with the new token
    assert Message.objects.get(channel=channel).body == "kept?"
