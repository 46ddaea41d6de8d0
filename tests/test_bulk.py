"""Bulk actions: every id through the gate first (any bad one: 404, nothing changes), then one by one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from helpdesk.conversations import actions
from helpdesk.conversations.models import Conversation, Priority, Status
from tests.conftest import login
from tests.helpers import last_event_id

BULK = "/api/v1/conversations/bulk"


def bulk(client, payload: dict):
    return client.post(BULK, payload, content_type="application/json")


@pytest.fixture
def chats(cast) -> list[Conversation]:
    """Three open conversations of team Sales (the cast's first one and two more)."""
    more = [
        actions.receive_message(channel=cast.widget, external_contact_id=f"bulk-{i}", body="hi").conversation
        for i in range(2)
    ]
    return [cast.conversation, *more]


def states(conversations) -> list[tuple]:
    return list(
        Conversation.objects.filter(pk__in=[c.pk for c in conversations])
        .order_by("pk")
        .values_list("status", "assignee_id", "team_id", "priority", "snoozed_until")
    )


def ids(conversations) -> list[int]:
    return [c.pk for c in conversations]


def test_resolving_several_at_once(client, cast, chats):
    login(client, cast.bob)
    response = bulk(client, {"ids": ids(chats), "action": "resolve"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == sorted(ids(chats))
    assert all(r["ok"] and r["conversation"]["status"] == Status.RESOLVED for r in results)
    assert {s[0] for s in states(chats)} == {Status.RESOLVED}


def test_assigning_to_me_to_an_agent_and_to_a_team(client, cast, chats):
    login(client, cast.bob)
    assert bulk(client, {"ids": ids(chats), "action": "assign", "assignee_id": cast.bob.pk}).status_code == 200
    assert {s[1] for s in states(chats)} == {cast.bob.pk}
    login(client, cast.alice)
    assert (
        bulk(client, {"ids": ids(chats), "action": "assign", "assignee_id": cast.erin.pk, "team_id": None}).status_code
        == 200
    )
    assert {(s[1], s[2]) for s in states(chats)} == {(cast.erin.pk, None)}
    assert bulk(client, {"ids": ids(chats), "action": "assign", "team_id": cast.support.pk}).status_code == 200
    assert {s[2] for s in states(chats)} == {cast.support.pk}


def test_snoozing_with_a_preset_and_setting_the_priority(client, cast, chats):
    login(client, cast.bob)
    response = bulk(client, {"ids": ids(chats), "action": "snooze", "preset": "tomorrow"})
    assert response.status_code == 200
    rows = states(chats)
    assert {s[0] for s in rows} == {Status.SNOOZED} and len({s[4] for s in rows}) == 1  # one wake time for all
    assert bulk(client, {"ids": ids(chats), "action": "priority", "priority": Priority.HIGH}).status_code == 200
    assert {s[3] for s in states(chats)} == {Priority.HIGH}


def test_a_rule_that_refuses_one_conversation_is_reported_and_the_others_are_done(client, cast, chats):
    actions.resolve(chats[1], by=cast.bob)
    login(client, cast.bob)
    until = (timezone.now() + timedelta(days=2)).isoformat()
    response = bulk(client, {"ids": ids(chats), "action": "snooze", "until": until})
    assert response.status_code == 200
    by_id = {r["id"]: r for r in response.json()["results"]}
    assert by_id[chats[1].pk]["ok"] is False
    assert by_id[chats[1].pk]["error"]["code"] == "resolved"
    assert by_id[chats[1].pk]["error"]["message"] == "A resolved conversation can't be snoozed."
    assert [s[0] for s in states(chats)] == [Status.SNOOZED, Status.RESOLVED, Status.SNOOZED]


@pytest.mark.parametrize("intruder", ["globex", "out_of_scope", "missing"])
def test_one_id_outside_the_gate_is_a_404_and_nothing_changes(client, cast, chats, intruder):
    if intruder == "globex":
        extra = actions.receive_message(channel=cast.globex_widget, external_contact_id="g", body="hi").conversation.pk
    elif intruder == "out_of_scope":  # a Support chat: Bob's scope is team Sales
        chat = actions.receive_message(channel=cast.widget, external_contact_id="s", body="hi").conversation
        actions.assign(chat, by=cast.alice, team=cast.support)
        extra = chat.pk
    else:
        extra = 10**9
    before, mark = states(chats), last_event_id()
    login(client, cast.bob)
    response = bulk(client, {"ids": [*ids(chats), extra], "action": "resolve"})
    assert response.status_code == 404
    assert states(chats) == before and last_event_id() == mark


@pytest.mark.parametrize("field", ["assignee_id", "team_id"])
def test_another_companys_assignee_or_team_is_a_404_and_nothing_changes(client, cast, chats, field):
    from helpdesk.accounts import services

    foreign = cast.carol.pk if field == "assignee_id" else services.create_team(company=cast.globex, name="Ops").pk
    before, mark = states(chats), last_event_id()
    login(client, cast.alice)
    assert bulk(client, {"ids": ids(chats), "action": "assign", field: foreign}).status_code == 404
    assert states(chats) == before and last_event_id() == mark


def test_snoozing_into_the_past_refuses_the_whole_batch(client, cast, chats):
    before, mark = states(chats), last_event_id()
    login(client, cast.bob)
    response = bulk(client, {"ids": ids(chats), "action": "snooze", "until": "2001-01-01T09:00"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "past"
    assert states(chats) == before and last_event_id() == mark


def test_a_role_without_the_permission_gets_403_and_nothing_changes(client, cast, chats):
    cast.bob.role.permissions = [p for p in cast.bob.role.permissions if p != "resolve"]
    cast.bob.role.save()
    before, mark = states(chats), last_event_id()
    login(client, cast.bob)
    assert bulk(client, {"ids": ids(chats), "action": "resolve"}).status_code == 403
    assert states(chats) == before and last_event_id() == mark


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "resolve"},
        {"ids": [], "action": "resolve"},
        {"ids": list(range(1, 102)), "action": "resolve"},
        {"ids": ["one"], "action": "resolve"},
        {"ids": [1], "action": "explode"},
        {"ids": [1], "action": "priority"},
        {"ids": [1], "action": "priority", "priority": 9},
        {"ids": [1], "action": "assign"},
        {"ids": [1], "action": "snooze"},
        {"ids": [1], "action": "snooze", "preset": "tomorrow", "until": "2099-01-01T00:00"},
    ],
)
def test_malformed_requests_are_a_400_and_change_nothing(client, cast, chats, payload):
    before, mark = states(chats), last_event_id()
    login(client, cast.bob)
    response = bulk(client, payload)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    assert states(chats) == before and last_event_id() == mark
