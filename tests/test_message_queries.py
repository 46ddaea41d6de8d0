"""Queries per visitor message and per agent reply: the live path's work, counted (issue 11).

A visitor message is counted as the widget socket does it, frame to ack: ``inbound.receive``
is the socket's one unit of database work (rate limits are Redis, not SQL), called with the
``SenderHint`` the socket holds (``sender_hint`` at auth, then the conversation of its last
message). Counts include the event rows (the statistics' rollups are kept from them after commit,
by ``reports.applier``: nothing of theirs is on this path), and the transaction's begin
and end: in a test the durable transaction is a SAVEPOINT ... RELEASE inside the test's own,
one query each, as BEGIN and COMMIT are on a server. PostgreSQL only: the short road (``actions/arrival.py``) is
PostgreSQL's; SQLite takes the long one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from helpdesk.accounts.models import Employee, Presence
from helpdesk.conversations import actions
from helpdesk.conversations.inbound import SenderHint
from helpdesk.conversations.models import Contact, Conversation, Message, Status
from helpdesk.events.models import Event
from integrations.widget import inbound
from tests.helpers import event_types, last_event_id

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="counted on PostgreSQL")

ADDRESS = "203.0.113.9"


def _send(cast, visitor: str, *, body: str = "Any news?", client_id: str = "client-0001", hint=None) -> Message:
    return inbound.receive(cast.widget, visitor, ADDRESS, body=body, client_id=client_id, hint=hint)


def _online(*employees: Employee, capacity: int | None = None) -> None:
    changes = {"presence": Presence.ONLINE, "last_seen_at": timezone.now()}
    if capacity is not None:
        changes["capacity"] = capacity
    Employee.objects.filter(pk__in=[e.pk for e in employees]).update(**changes)


def test_a_message_into_an_assigned_conversation_costs_4_queries(cast, django_assert_num_queries):
    Conversation.objects.filter(pk=cast.conversation.pk).update(assignee=cast.bob)
    hint = inbound.sender_hint(cast.widget, "visitor-1")
    assert hint == SenderHint(conversation_id=cast.conversation.pk)
    mark = last_event_id()
    # begin; update the conversation + insert the message (one statement, which also reads
    # back the contact, channel and assignee); insert the event; commit.
    # Quick answers: none, from the process's cache. Routing: none, it has an assignee.
    with django_assert_num_queries(4):
        message = _send(cast, "visitor-1", hint=hint)
    assert message.conversation_id == cast.conversation.pk
    assert event_types(after=mark) == ["message.created"]
    conversation = Conversation.objects.get(pk=cast.conversation.pk)
    assert conversation.last_message_preview == "Any news?"
    assert conversation.assignee_id == cast.bob.pk
    assert conversation.last_activity_at == message.created_at


def test_a_message_that_waits_in_the_queue_costs_6_queries(cast, django_assert_num_queries):
    # Agents online, every one of them full: nobody has room.
    _online(cast.bob, cast.erin, cast.alice, capacity=0)
    hint = inbound.sender_hint(cast.widget, "visitor-1")
    mark = last_event_id()
    # begin; update + insert; the event; the queue gate (shared); one look at
    # the agents' loads (no room: no routing lock, no roster); commit.
    with django_assert_num_queries(6):
        _send(cast, "visitor-1", hint=hint)
    assert event_types(after=mark) == ["message.created"]
    assert Conversation.objects.get(pk=cast.conversation.pk).assignee_id is None


def test_a_new_visitors_first_message_costs_7_queries(cast, django_assert_num_queries):
    _online(cast.bob, capacity=0)
    hint = inbound.sender_hint(cast.widget, "visitor-2")
    assert hint == SenderHint(new_sender=True)
    mark = last_event_id()
    # begin; contact + identity + conversation + message (one statement); conversation.created;
    # message.created; the queue gate; the look for room; commit.
    with django_assert_num_queries(7):
        message = _send(cast, "visitor-2", body="Hello there", hint=hint)
    conversation = message.conversation
    assert event_types(after=mark) == ["conversation.created", "message.created"]
    stored = Conversation.objects.get(pk=conversation.pk)
    assert (stored.team_id, stored.status, stored.assignee_id) == (cast.sales.pk, Status.OPEN, None)
    assert stored.waiting_since is not None and stored.last_message_preview == "Hello there"
    assert Contact.objects.get(identities__channel=cast.widget, identities__external_id="visitor-2") == stored.contact
    created = Event.objects.get(conversation=stored, type="conversation.created")
    # The opening event pictures the conversation as it opened, as the long road does.
    assert created.payload["conversation"]["preview"] == ""
    assert created.payload["conversation"]["waiting_since"] is None


def test_a_queued_message_is_handed_out_when_someone_has_room(cast):
    _online(cast.bob)
    message = _send(cast, "visitor-1", hint=inbound.sender_hint(cast.widget, "visitor-1"))
    assert Conversation.objects.get(pk=message.conversation_id).assignee_id == cast.bob.pk


def test_both_roads_tell_the_same_story(cast):
    Conversation.objects.filter(pk=cast.conversation.pk).update(assignee=cast.bob)
    long = _send(cast, "visitor-1", body="By the long road", client_id="client-long")
    short = _send(
        cast, "visitor-1", body="By the short road", client_id="client-short", hint=SenderHint(long.conversation_id)
    )
    payloads = [
        Event.objects.filter(type="message.created", payload__message__id=m.pk).get().payload for m in (long, short)
    ]
    for payload in payloads:
        for moving in ("last_activity_at", "preview"):
            payload["conversation"].pop(moving)
        for moving in ("id", "body", "created_at"):
            payload["message"].pop(moving)
    assert payloads[0] == payloads[1]


def test_a_replayed_frame_is_stored_once_by_the_short_road(cast, django_assert_max_num_queries):
    hint = inbound.sender_hint(cast.widget, "visitor-1")
    first = _send(cast, "visitor-1", hint=hint)
    mark = last_event_id()
    # begin; the statement (its insert does nothing); roll back (in a test: to the savepoint,
    # and release it); read the stored message.
    with django_assert_max_num_queries(5):
        again = _send(cast, "visitor-1", hint=hint)
    assert again.pk == first.pk
    assert event_types(after=mark) == []
    assert Message.objects.filter(channel=cast.widget, external_id=first.external_id).count() == 1


def test_a_stale_hint_takes_the_long_road_to_the_same_outcome(cast):
    actions.resolve(cast.conversation, by=cast.bob)
    mark = last_event_id()
    # The socket still thinks the conversation is open: the message reopens it.
    message = _send(cast, "visitor-1", hint=SenderHint(conversation_id=cast.conversation.pk))
    assert message.conversation_id == cast.conversation.pk
    assert event_types(after=mark) == ["conversation.reopened", "message.created"]
    # It thinks the visitor never wrote: the contact and conversation they have are used.
    again = _send(cast, "visitor-1", client_id="client-0002", hint=SenderHint(new_sender=True))
    assert again.conversation_id == cast.conversation.pk
    assert Contact.objects.filter(identities__external_id="visitor-1").count() == 1
    # Another visitor's conversation id is no use to this one.
    other = _send(cast, "visitor-3", hint=SenderHint(conversation_id=cast.conversation.pk))
    assert other.conversation_id != cast.conversation.pk


def test_a_blocked_visitors_message_is_kept_aside_whatever_the_hint(cast):
    Contact.objects.filter(pk=cast.conversation.contact_id).update(blocked_at=timezone.now())
    mark = last_event_id()
    message = _send(cast, "visitor-1", hint=inbound.sender_hint(cast.widget, "visitor-1"))
    assert message.while_blocked
    assert event_types(after=mark) == []


def test_an_agents_reply_through_the_api_costs_5_queries_after_sign_in(cast, client, django_assert_num_queries):
    Conversation.objects.filter(pk=cast.conversation.pk).update(assignee=cast.bob)
    client.force_login(cast.bob.user)
    url = f"/api/v1/conversations/{cast.conversation.pk}/reply"
    client.post(url, {"body": "Warming up"}, content_type="application/json")
    # Sign-in, 3: the session; its user; the user's employee with company and role (one join,
    # for the time zone middleware and the access gate). Then what the view issues, 5: the
    # conversation through the access gate (the agent's teams a subquery of it); begin; update
    # the conversation + insert the reply + move the agent's read marker (one statement); the
    # event; commit. (A widget conversation has
    # no delivery row; Telegram's, VK's, e-mail's add its insert.)
    with django_assert_num_queries(3 + 5) as captured:
        response = client.post(url, {"body": "It ships today."}, content_type="application/json")
    assert response.status_code == 201
    assert "django_session" in captured.captured_queries[0]["sql"]
    message = Message.objects.get(pk=response.json()["id"])
    conversation = Conversation.objects.get(pk=cast.conversation.pk)
    assert (message.author_employee_id, message.body) == (cast.bob.pk, "It ships today.")
    assert conversation.waiting_since is None and conversation.last_message_preview == "It ships today."
    assert cast.bob.read_markers.get(conversation=conversation).last_read_message_id == message.pk


def test_a_reply_that_wakes_a_snoozed_conversation_takes_the_long_road(cast):
    actions.snooze(cast.conversation, by=cast.bob, until=timezone.now() + timedelta(hours=1))
    mark = last_event_id()
    actions.post_reply(cast.conversation, by=cast.alice, body="Back to it")
    assert event_types(after=mark) == ["conversation.woken", "message.created"]
    assert Conversation.objects.get(pk=cast.conversation.pk).status == Status.OPEN
