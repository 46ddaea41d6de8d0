"""CSAT: the satisfaction survey offered on resolve, rated once per resolution (docs/csat.md).

Real PostgreSQL, the real ASGI app and channel layer for the widget's socket; the Telegram
survey and digit reply through the webhook against the fake Bot API.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.utils import timezone

from helpdesk.accounts import actions as admin_actions
from helpdesk.conversations import actions, csat
from helpdesk.conversations.models import Conversation, Message, Rating, Status
from helpdesk.errors import ActionError
from helpdesk.events.models import Event
from integrations.widget.visitors import issue_token
from tests.conftest import ACME_ORIGIN, login
from tests.fakes.telegram import fake_telegram  # noqa: F401 (a fixture)
from tests.helpers import event_types, last_event_id
from tests.test_sockets import connected_inbox, connected_widget, events_received
from tests.test_widget_http import start


def survey_on(cast, **extra):
    admin_actions.update_channel(cast.widget, by=cast.alice, csat=True, **extra)
    cast.widget.refresh_from_db()


def resolved(cast):
    actions.assign(cast.conversation, by=cast.bob, assignee=cast.bob)
    return actions.resolve(Conversation.objects.get(pk=cast.conversation.pk), by=cast.bob)


def rate(cast, score, comment="", **kwargs):
    conversation = Conversation.objects.get(pk=cast.conversation.pk)
    return actions.rate_conversation(conversation, contact=conversation.contact, score=score, comment=comment, **kwargs)


def refused(cast, code, score=4, **kwargs):
    before = (list(Rating.objects.values_list("pk", "score", "comment")), last_event_id())
    with pytest.raises(ActionError) as caught:
        rate(cast, score, **kwargs)
    assert caught.value.code == code
    assert caught.value.message  # said politely, to the customer
    assert (list(Rating.objects.values_list("pk", "score", "comment")), last_event_id()) == before
    return caught.value


# --- The writer -------------------------------------------------------------------------------


def test_resolving_offers_the_survey_and_rating_records_one_event(cast):
    survey_on(cast)
    after = last_event_id()
    resolved(cast)
    resolve = Event.objects.filter(type="conversation.resolved").latest("id")
    assert resolve.payload["resolution"] == 1 and resolve.payload["survey"] is True
    survey = Rating.objects.get()
    assert (survey.resolution, survey.score, survey.agent_id, survey.resolved_by_id) == (
        1,
        None,
        cast.bob.pk,
        cast.bob.pk,
    )
    assert survey.team_id == cast.sales.pk and survey.channel_id == cast.widget.pk
    # The widget shows the survey inline: no message is written for it.
    assert not Message.objects.filter(conversation=cast.conversation, automatic=True).exists()

    rating = rate(cast, 4, "  Quick and kind  ")
    assert (rating.score, rating.comment) == (4, "Quick and kind") and rating.rated_at is not None
    assert event_types(after=after)[-1] == "conversation.rated"
    event = Event.objects.get(type="conversation.rated")
    assert event.actor_id is None
    assert {
        k: event.payload[k] for k in ("rating", "comment_given", "comment", "resolution", "agent_id", "team_id")
    } == {
        "rating": 4,
        "comment_given": True,
        "comment": "Quick and kind",
        "resolution": 1,
        "agent_id": cast.bob.pk,
        "team_id": cast.sales.pk,
    }
    assert Conversation.objects.get(pk=cast.conversation.pk).status == Status.RESOLVED


def test_a_second_rating_of_the_same_resolution_is_refused(cast):
    survey_on(cast)
    resolved(cast)
    rate(cast, 5)
    error = refused(cast, "already_rated", score=1)
    assert "already rated" in error.message
    assert Rating.objects.get().score == 5


def test_a_rating_after_a_reopen_is_refused(cast):
    survey_on(cast)
    resolved(cast)
    actions.reopen(Conversation.objects.get(pk=cast.conversation.pk), by=cast.bob)
    refused(cast, "not_resolved")


def test_a_rating_after_the_window_is_refused(cast, settings):
    settings.CSAT_RATING_WINDOW_HOURS = 72
    survey_on(cast)
    resolved(cast)
    Rating.objects.update(created_at=timezone.now() - timedelta(hours=72, seconds=1))
    refused(cast, "rating_closed")
    Rating.objects.update(created_at=timezone.now() - timedelta(hours=71))
    assert rate(cast, 3).score == 3


def test_each_resolution_is_rated_once_and_only_the_newest(cast):
    survey_on(cast)
    resolved(cast)
    rate(cast, 2)
    actions.reopen(Conversation.objects.get(pk=cast.conversation.pk), by=cast.bob)
    actions.resolve(Conversation.objects.get(pk=cast.conversation.pk), by=cast.bob)
    assert Conversation.objects.get(pk=cast.conversation.pk).resolutions == 2
    refused(cast, "already_rated", resolution=1)
    assert rate(cast, 5, resolution=2).resolution == 2
    assert sorted(Rating.objects.values_list("resolution", "score")) == [(1, 2), (2, 5)]


def test_without_the_survey_nothing_is_offered_and_nothing_can_be_rated(cast):
    resolved(cast)
    assert Conversation.objects.get(pk=cast.conversation.pk).resolutions == 1
    assert Event.objects.filter(type="conversation.resolved").latest("id").payload["survey"] is False
    assert not Rating.objects.exists()
    refused(cast, "not_rateable")


@pytest.mark.parametrize(
    ("score", "comment", "code"),
    [
        (0, "", "bad_rating"),
        (6, "", "bad_rating"),
        (True, "", "bad_rating"),
        ("5", "", "bad_rating"),
        (4.0, "", "bad_rating"),
        (4, "x" * 1001, "comment_too_long"),
        (4, "nul\x00", "bad_characters"),
        (4, ["list"], "bad_comment"),
    ],
)
def test_bad_ratings_are_refused_and_change_nothing(cast, score, comment, code):
    survey_on(cast)
    resolved(cast)
    refused(cast, code, score=score, comment=comment)
    assert Rating.objects.get().score is None


def test_only_the_conversations_contact_may_rate_it(cast):
    survey_on(cast)
    resolved(cast)
    other = actions.receive_message(channel=cast.widget, external_contact_id="v-2", body="hi").conversation.contact
    with pytest.raises(ActionError) as caught:
        actions.rate_conversation(Conversation.objects.get(pk=cast.conversation.pk), contact=other, score=5)
    assert caught.value.code == "not_rateable"


def test_the_survey_question_is_a_channel_setting_in_settings_and_the_api(client, cast):
    login(client, cast.alice)
    url = f"/api/v1/channels/{cast.widget.pk}/"
    response = client.patch(url, {"csat": True, "csat_question": "Did we help?"}, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["csat"], body["csat_question"]) == (True, "Did we help?")
    assert "csat" not in body["settings"]
    too_long = client.patch(url, {"csat_question": "?" * 301}, content_type="application/json")
    assert too_long.status_code == 400
    page = client.post(
        f"/settings/channels/{cast.widget.pk}/",
        {
            "name": "Acme site",
            "team": cast.sales.pk,
            "greeting": "",
            "csat_question": "",
            "allowed_origins": ACME_ORIGIN,
            "title": "",
            "color": "#4f46e5",
        },
    )
    assert page.status_code in (200, 302), page.content
    cast.widget.refresh_from_db()
    assert cast.widget.settings["csat"] is False and cast.widget.settings["csat_question"] == ""


# --- Where ratings show -------------------------------------------------------------------------


def test_ratings_show_in_the_conversation_and_contact_api_and_the_inbox(client, cast):
    survey_on(cast)
    resolved(cast)
    rate(cast, 4, "Thanks <b>all</b>")
    login(client, cast.bob)
    conversation = client.get(f"/api/v1/conversations/{cast.conversation.pk}/").json()
    assert conversation["resolutions"] == 1
    assert [(r["rating"], r["comment"], r["agent_id"]) for r in conversation["ratings"]] == [
        (4, "Thanks <b>all</b>", cast.bob.pk)
    ]
    contact = client.get(f"/api/v1/contacts/{cast.conversation.contact_id}/").json()
    assert [(r["rating"], r["conversation_id"]) for r in contact["ratings"]] == [(4, cast.conversation.pk)]
    page = client.get(f"/inbox/{cast.conversation.pk}/")
    assert page.status_code == 200
    state = page.context["state"]
    (line,) = [h for h in state["assignment"]["history"] if h["type"] == "conversation.rated"]
    assert (line["rating"], line["comment"]) == (4, "Thanks <b>all</b>")
    assert [r["rating"] for r in state["contact"]["ratings"]] == [4]
    # Another company's admin sees none of it.
    login(client, cast.carol)
    assert client.get(f"/api/v1/contacts/{cast.conversation.contact_id}/").status_code == 404


def test_a_contacts_ratings_follow_the_readers_scope(cast):
    survey_on(cast)
    resolved(cast)
    rate(cast, 2)
    contact_id = cast.conversation.contact_id
    assert [r["rating"] for r in csat.contact_ratings(cast.bob, contact_id)] == [2]
    # Dave sees only conversations assigned to him, Erin only her team's (Support): none of it.
    assert csat.contact_ratings(cast.dave, contact_id) == []
    assert csat.contact_ratings(cast.erin, contact_id) == []


# --- The widget -------------------------------------------------------------------------------


def test_the_session_shows_the_open_survey_after_a_reload(client, cast):
    survey_on(cast, csat_question="Was this helpful?")
    token, _ = issue_token(cast.widget, "visitor-1")
    assert start(client, cast.widget, {"token": token}).json()["survey"] is None
    resolved(cast)
    survey = start(client, cast.widget, {"token": token}).json()["survey"]
    assert survey["resolution"] == 1 and survey["question"] == "Was this helpful?" and survey["closes_at"]
    rate(cast, 5)
    assert start(client, cast.widget, {"token": token}).json()["survey"] is None


def test_the_session_shows_no_survey_once_it_is_late_or_reopened(client, cast):
    survey_on(cast)
    token, _ = issue_token(cast.widget, "visitor-1")
    resolved(cast)
    Rating.objects.update(created_at=timezone.now() - timedelta(days=4))
    assert start(client, cast.widget, {"token": token}).json()["survey"] is None
    actions.reopen(Conversation.objects.get(pk=cast.conversation.pk), by=cast.bob)
    assert start(client, cast.widget, {"token": token}).json()["survey"] is None


async def next_of(socket, kind):
    while True:
        frame = await socket.receive_json_from(timeout=3)
        if frame["type"] == kind:
            return frame


@pytest.mark.django_db(transaction=True)
async def test_the_visitor_is_asked_live_rates_over_the_socket_and_the_agent_sees_it(tcast):
    await database_sync_to_async(survey_on)(tcast)
    await database_sync_to_async(actions.assign)(tcast.conversation, by=tcast.bob, assignee=tcast.bob)
    visitor = await connected_widget(tcast.widget, "visitor-1")
    bob = await connected_inbox(tcast.bob)
    await events_received(bob)
    await database_sync_to_async(actions.resolve)(tcast.conversation, by=tcast.bob)
    survey = await next_of(visitor, "survey")
    assert survey["survey"]["resolution"] == 1 and survey["survey"]["question"] == ""

    await visitor.send_json_to({"type": "rate", "rating": 5, "comment": "Great help", "resolution": 1})
    assert await next_of(visitor, "rated") == {"type": "rated", "resolution": 1, "rating": 5}
    events = [e for e in await events_received(bob) if e["type"] == "conversation.rated"]
    assert [(e["payload"]["rating"], e["payload"]["comment"]) for e in events] == [(5, "Great help")]

    # Again: refused politely, nothing changes.
    await visitor.send_json_to({"type": "rate", "rating": 1})
    error = await next_of(visitor, "error")
    assert error["code"] == "already_rated" and error["message"]
    assert await sync_to_async(lambda: list(Rating.objects.values_list("score", "comment")))() == [(5, "Great help")]
    await visitor.disconnect()
    await bob.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_reopen_takes_the_survey_away_and_a_rating_then_is_refused(tcast):
    await database_sync_to_async(survey_on)(tcast)
    visitor = await connected_widget(tcast.widget, "visitor-1")
    await database_sync_to_async(actions.resolve)(tcast.conversation, by=tcast.bob)
    assert (await next_of(visitor, "survey"))["survey"] is not None
    await database_sync_to_async(actions.reopen)(tcast.conversation, by=tcast.bob)
    assert (await next_of(visitor, "survey"))["survey"] is None
    await visitor.send_json_to({"type": "rate", "rating": 4})
    assert (await next_of(visitor, "error"))["code"] == "not_resolved"
    assert not await sync_to_async(Rating.objects.filter(score__isnull=False).exists)()
    await visitor.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"type": "rate"}, "bad_rating"),
        ({"type": "rate", "rating": "5"}, "bad_rating"),
        ({"type": "rate", "rating": 9}, "bad_rating"),
        ({"type": "rate", "rating": True}, "bad_rating"),
        ({"type": "rate", "rating": 5, "comment": 7}, "bad_comment"),
        ({"type": "rate", "rating": 5, "comment": "z" * 1001}, "comment_too_long"),
        ({"type": "rate", "rating": 5, "resolution": "1"}, "bad_rating"),
        ({"type": "rate", "rating": 5}, "not_rateable"),  # never resolved: nothing to rate
    ],
)
async def test_bad_rate_frames_get_an_error_and_store_nothing(tcast, frame, code):
    await database_sync_to_async(survey_on)(tcast)
    visitor = await connected_widget(tcast.widget, "visitor-1")
    await visitor.send_json_to(frame)
    reply = await visitor.receive_json_from(timeout=3)
    assert (reply["type"], reply["code"]) == ("error", code) and reply["message"]
    assert await visitor.receive_nothing(timeout=0.2)
    assert not await sync_to_async(Rating.objects.exists)()
    await visitor.disconnect()


def test_a_lone_digit_in_the_widget_rates_too_and_keeps_it_resolved(cast):
    survey_on(cast)
    resolved(cast)
    message = actions.receive_message(
        channel=cast.widget, external_contact_id="visitor-1", body=" 4 ", external_id="w:9"
    )
    conversation = Conversation.objects.get(pk=cast.conversation.pk)
    assert message.conversation_id == conversation.pk and conversation.status == Status.RESOLVED
    assert Rating.objects.get().score == 4
    thanks = Message.objects.filter(conversation=conversation, automatic=True).latest("pk")
    assert thanks.body == "Thank you for your rating!"
    # The same message again (a retry): stored once, rated once, thanked once.
    actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body=" 4 ", external_id="w:9")
    assert Message.objects.filter(conversation=conversation, automatic=True).count() == 1
    # Any other text reopens as always.
    actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="4 more things")
    assert Conversation.objects.get(pk=conversation.pk).status == Status.OPEN


def test_json_of_the_rated_event_stays_small(cast):
    survey_on(cast)
    resolved(cast)
    rate(cast, 5, "ok")
    payload = Event.objects.get(type="conversation.rated").payload
    # The event log adds the conversation and, for the statistics, the roles at that moment.
    extra = {k: v for k, v in payload.items() if k not in ("conversation", "roles")}
    assert set(extra) == {"rating", "comment_given", "comment", "resolution", "rating_id", "agent_id", "team_id"}
    assert len(json.dumps(extra)) < 200


# --- Telegram: the survey as a message through the worker's path, answered by a digit -----------


@pytest.fixture
def telegram_channel(cast, fake_telegram, settings):  # noqa: F811
    from helpdesk.conversations import secrets
    from helpdesk.conversations.models import Channel
    from tests.test_telegram import TOKEN

    settings.TELEGRAM_API_URL = fake_telegram.url
    fake_telegram.add_bot(TOKEN, username="acme_support_bot")
    channel = Channel.objects.create(
        company=cast.acme,
        kind="telegram",
        name="Acme bot",
        team=cast.sales,
        settings={"mode": "webhook", "bot_username": "acme_support_bot"},
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )
    admin_actions.update_channel(channel, by=cast.alice, csat=True)
    channel.refresh_from_db()
    return channel


def test_telegram_gets_the_survey_as_a_message_and_a_digit_rates_it(client, cast, telegram_channel, fake_telegram):  # noqa: F811
    from helpdesk.conversations import tasks
    from helpdesk.conversations.models import Delivery, DeliveryStatus
    from tests.test_telegram import TOKEN, post, pushed

    fake = fake_telegram
    ann = fake.user("Ann", language_code="ru")
    assert (
        post(client, telegram_channel, pushed(fake, fake.text_update(TOKEN, ann, "Where is my order?"))).status_code
        == 200
    )
    conversation = Conversation.objects.get(channel=telegram_channel)
    actions.resolve(conversation, by=cast.bob)

    # The question leaves like any reply: a Delivery the worker sends, in Ann's language.
    question = Message.objects.filter(conversation=conversation, automatic=True).get()
    assert "1" in question.body and "5" in question.body
    delivery = Delivery.objects.get(message=question)
    assert tasks.deliver.run(delivery.pk) == DeliveryStatus.SENT
    (sent,) = fake.sent_to(ann["id"])
    assert sent.text == question.body

    update = pushed(fake, fake.text_update(TOKEN, ann, "5"))
    assert post(client, telegram_channel, update).status_code == 200
    conversation.refresh_from_db()
    assert conversation.status == Status.RESOLVED  # the digit did not reopen it
    assert Rating.objects.get(conversation=conversation).score == 5
    event = Event.objects.get(type="conversation.rated", conversation=conversation)
    assert event.payload["rating"] == 5 and event.payload["comment_given"] is False
    thanks = Message.objects.filter(conversation=conversation, automatic=True).latest("pk")
    assert Delivery.objects.filter(message=thanks).exists()

    # The same update again (Telegram's retry): nothing new.
    messages = Message.objects.filter(conversation=conversation).count()
    assert post(client, telegram_channel, update).status_code == 200
    assert Message.objects.filter(conversation=conversation).count() == messages

    # A second digit is refused politely in her channel; the rating stays.
    assert post(client, telegram_channel, pushed(fake, fake.text_update(TOKEN, ann, "1"))).status_code == 200
    refusal = Message.objects.filter(conversation=conversation, automatic=True).latest("pk")
    assert refusal.pk != thanks.pk and Delivery.objects.filter(message=refusal).exists()
    assert Rating.objects.get(conversation=conversation).score == 5
    conversation.refresh_from_db()
    assert conversation.status == Status.RESOLVED

    # Words are a new message as always: it reopens the conversation.
    assert (
        post(client, telegram_channel, pushed(fake, fake.text_update(TOKEN, ann, "One more thing"))).status_code == 200
    )
    conversation.refresh_from_db()
    assert conversation.status == Status.OPEN


def test_a_late_digit_on_telegram_is_refused_politely(client, cast, telegram_channel, fake_telegram):  # noqa: F811
    from tests.test_telegram import TOKEN, post, pushed

    fake = fake_telegram
    bo = fake.user("Bo", language_code="en")
    post(client, telegram_channel, pushed(fake, fake.text_update(TOKEN, bo, "Hi")))
    conversation = Conversation.objects.get(channel=telegram_channel)
    actions.resolve(conversation, by=cast.bob)
    Rating.objects.update(created_at=timezone.now() - timedelta(hours=73))
    post(client, telegram_channel, pushed(fake, fake.text_update(TOKEN, bo, "3")))
    refusal = Message.objects.filter(conversation=conversation, automatic=True).latest("pk")
    assert refusal.body == "This conversation can no longer be rated."
    assert Rating.objects.get().score is None
    assert not Event.objects.filter(type="conversation.rated").exists()
