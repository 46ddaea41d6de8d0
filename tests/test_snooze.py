"""Snoozing: presets on the company's clock, any time, never the past, and why a chat woke up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import Company
from helpdesk.conversations import actions
from helpdesk.conversations.access import Viewer, employee_group, event_groups
from helpdesk.conversations.models import Conversation, Status
from helpdesk.conversations.snooze import preset_time, preset_times
from helpdesk.conversations.tasks import wake_due_conversations
from helpdesk.errors import ActionError
from helpdesk.events.log import serialise
from helpdesk.events.models import Event
from helpdesk.web.inbox_assignment import history
from tests.conftest import login
from tests.helpers import event_types, last_event_id

API = "/api/v1/conversations/"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- The presets -----------------------------------------------------------------------------------


def test_in_one_hour_is_sixty_minutes_from_now(cast):
    now = utc(2025, 5, 14, 10, 17)
    assert preset_time("hour", company=cast.acme, now=now) == utc(2025, 5, 14, 11, 17)


def test_late_in_the_evening_in_moscow_tomorrow_is_the_next_moscow_day(cast):
    # 23:30 in Moscow (UTC+3) is still 20:30 of the same day in UTC.
    now = utc(2025, 5, 14, 20, 30)
    assert preset_time("tomorrow", company=cast.acme, now=now) == utc(2025, 5, 15, 6, 0)  # 9:00 Moscow


def test_just_after_midnight_in_moscow_tomorrow_skips_the_utc_date(cast):
    # 00:30 Thursday in Moscow is 21:30 Wednesday in UTC: tomorrow is Friday, not Thursday.
    now = utc(2025, 5, 14, 21, 30)
    assert preset_time("tomorrow", company=cast.acme, now=now) == utc(2025, 5, 16, 6, 0)


@pytest.mark.parametrize(
    ("now", "monday"),
    [
        (utc(2025, 5, 12, 7, 0), utc(2025, 5, 19, 6, 0)),  # Monday 10:00 Moscow: a week away
        (utc(2025, 5, 12, 5, 0), utc(2025, 5, 19, 6, 0)),  # Monday 8:00, before 9: still next week's
        (utc(2025, 5, 18, 12, 0), utc(2025, 5, 19, 6, 0)),  # Sunday: tomorrow
        (utc(2025, 5, 18, 21, 30), utc(2025, 5, 26, 6, 0)),  # Sunday 21:30 UTC is Monday 0:30 in Moscow
        (utc(2025, 5, 14, 12, 0), utc(2025, 5, 19, 6, 0)),  # Wednesday
    ],
)
def test_next_monday_is_the_coming_monday_and_never_today(cast, now, monday):
    assert preset_time("next_monday", company=cast.acme, now=now) == monday


def test_the_presets_follow_daylight_saving_time():
    berlin = Company(name="Berlin GmbH", timezone="Europe/Berlin")  # the presets read only its zone
    # Saturday before clocks go forward (30 March 2025): 9:00 on Sunday is already summer time.
    presets = preset_times(berlin, utc(2025, 3, 29, 12, 0))
    assert presets["tomorrow"] == utc(2025, 3, 30, 7, 0)  # 9:00 CEST = UTC+2
    assert presets["next_monday"] == utc(2025, 3, 31, 7, 0)
    # Saturday before clocks go back (26 October 2025): Sunday's 9:00 is winter time again.
    presets = preset_times(berlin, utc(2025, 10, 25, 12, 0))
    assert presets["tomorrow"] == utc(2025, 10, 26, 8, 0)  # 9:00 CET = UTC+1
    # "In 1 hour" is an hour of real time, whatever the wall clock does.
    assert preset_time("hour", company=berlin, now=utc(2025, 3, 30, 0, 30)) == utc(2025, 3, 30, 1, 30)


def test_an_unknown_preset_is_refused(cast):
    with pytest.raises(ActionError) as refused:
        preset_time("someday", company=cast.acme)
    assert refused.value.code == "bad_preset"


# --- Through the API -------------------------------------------------------------------------------


def snooze(client, conversation, payload: dict):
    return client.post(f"{API}{conversation.pk}/snooze", payload, content_type="application/json")


def test_a_preset_is_computed_by_the_server_on_the_company_clock(client, cast):
    login(client, cast.bob)
    before = timezone.now()
    response = snooze(client, cast.conversation, {"preset": "tomorrow"})
    assert response.status_code == 200
    until = datetime.fromisoformat(response.json()["snoozed_until"])
    assert until == preset_time("tomorrow", company=cast.acme, now=before)
    assert response.json()["status"] == Status.SNOOZED


def test_a_time_without_an_offset_is_read_in_the_company_time_zone(client, cast):
    login(client, cast.bob)
    response = snooze(client, cast.conversation, {"until": "2099-01-01T09:00"})
    assert response.status_code == 200
    cast.conversation.refresh_from_db()
    assert cast.conversation.snoozed_until == utc(2099, 1, 1, 6, 0)  # 9:00 in Moscow


def test_with_an_api_key_a_time_without_an_offset_is_company_time_too(client, cast):
    # The key is checked by the API view, after the middleware that activates the company's zone.
    _, key = admin_actions.create_api_token(by=cast.bob, name="script")
    response = client.post(
        f"{API}{cast.conversation.pk}/snooze",
        {"until": "2099-01-01T09:00"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    cast.conversation.refresh_from_db()
    assert cast.conversation.snoozed_until == utc(2099, 1, 1, 6, 0)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, "invalid"),
        ({"until": "2099-01-01T09:00", "preset": "hour"}, "invalid"),
        ({"preset": "someday"}, "invalid"),
        ({"until": "not a time"}, "invalid"),
        ({"until": "2001-01-01T09:00"}, "past"),
        ({"until": timezone.now().isoformat()}, "past"),
    ],
)
def test_bad_snooze_requests_are_refused_and_change_nothing(client, cast, payload, code):
    login(client, cast.bob)
    mark = last_event_id()
    response = snooze(client, cast.conversation, payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == code
    if code == "past":
        assert error["message"] == "Snooze time must be in the future."
    cast.conversation.refresh_from_db()
    assert (cast.conversation.status, cast.conversation.snoozed_until) == (Status.OPEN, None)
    assert last_event_id() == mark


def test_the_refusal_speaks_russian_to_a_russian_request(client, cast):
    login(client, cast.bob)
    response = client.post(
        f"{API}{cast.conversation.pk}/snooze",
        {"until": "2001-01-01T09:00"},
        content_type="application/json",
        headers={"Accept-Language": "ru"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] != "Snooze time must be in the future."


def test_unsnoozing_by_hand_through_the_api(client, cast):
    actions.snooze(cast.conversation, by=cast.bob, until=timezone.now() + timedelta(days=1))
    login(client, cast.bob)
    response = client.post(f"{API}{cast.conversation.pk}/wake")
    assert response.status_code == 200 and response.json()["status"] == Status.OPEN
    assert response.json()["snoozed_until"] is None


# --- Why it woke up -------------------------------------------------------------------------------


def woken_reason(conversation) -> str:
    event = Event.objects.filter(conversation=conversation, type="conversation.woken").latest("id")
    return event.payload["reason"]


@pytest.fixture
def snoozed(cast):
    actions.assign(cast.conversation, by=cast.alice, assignee=cast.bob)
    actions.snooze(cast.conversation, by=cast.bob, until=timezone.now() + timedelta(hours=1))
    return cast.conversation


def test_the_scheduler_wakes_it_because_its_time_came(cast, snoozed):
    Conversation.objects.filter(pk=snoozed.pk).update(snoozed_until=timezone.now() - timedelta(seconds=1))
    assert wake_due_conversations() == 1
    assert woken_reason(snoozed) == "time"
    assert Event.objects.filter(type="conversation.woken").latest("id").actor_id is None


def test_a_customer_message_wakes_it_because_the_customer_wrote(cast, snoozed):
    actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="Hello?")
    assert woken_reason(snoozed) == "customer"


def test_a_teammates_note_wakes_it_and_says_who(cast, snoozed):
    actions.add_note(snoozed, by=cast.alice, body="Bob, the customer called")
    event = Event.objects.filter(conversation=snoozed, type="conversation.woken").latest("id")
    assert (event.payload["reason"], event.actor_id) == ("teammate", cast.alice.pk)


def test_unsnoozing_by_hand_is_manual(cast, snoozed):
    mark = last_event_id()
    actions.wake(snoozed, by=cast.bob)
    assert woken_reason(snoozed) == "manual"
    actions.wake(snoozed, by=cast.bob)  # already awake: nothing more happens
    assert event_types(after=mark) == ["conversation.woken"]


def test_the_woken_event_reaches_the_assignee_even_with_assigned_only_scope(cast):
    # Dave sees only chats assigned to him: the wake-up event is his through his own group.
    actions.assign(cast.conversation, by=cast.alice, assignee=cast.dave)
    actions.snooze(cast.conversation, by=cast.dave, until=timezone.now() + timedelta(hours=1))
    actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="Back again")
    event = serialise(Event.objects.filter(type="conversation.woken").latest("id"))
    assert employee_group(cast.dave.pk) in event_groups(event)
    assert Viewer.of(cast.dave).sees(event["payload"]["conversation"])


def test_the_threads_history_tells_snoozing_waking_resolving_and_reopening(cast, snoozed):
    actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="Hello?")  # wakes it
    actions.snooze(snoozed, by=cast.bob, until=timezone.now() + timedelta(hours=2))
    actions.wake(snoozed, by=cast.alice)
    actions.resolve(snoozed, by=cast.bob)
    actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="One more thing")
    lines = [
        (item["type"], item["actor_name"], item["reason"], bool(item["until"]))
        for item in history(snoozed)
        if item["type"] != "conversation.assigned"
    ]
    assert lines == [
        ("conversation.snoozed", "Bob", None, True),
        ("conversation.woken", None, "customer", False),
        ("conversation.snoozed", "Bob", None, True),
        ("conversation.woken", "Alice", "manual", False),
        ("conversation.resolved", "Bob", None, False),
        ("conversation.reopened", None, None, False),
    ]
