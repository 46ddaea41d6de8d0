"""Internal notes never reach the customer, on any path out of Smartchat that exists.

The paths: the widget socket's live push (integrations.outbound.socket_sends), the queue for
channels with an outside API (outbound.enqueue), the widget socket's resume history, the
widget session endpoint's history, typing indicators, and the REST API (which a customer's
widget token can't open). A note is followed through its whole life: written with a
mention, deleted and restored.
"""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async

from helpdesk.conversations import actions
from helpdesk.events.log import serialise
from helpdesk.events.models import Event
from integrations import outbound
from integrations.widget.visitors import issue_token, visitor_history
from tests.conftest import ACME_ORIGIN
from tests.helpers import last_event_id

# _clean_layer: test_sockets' autouse fixture, which empties the channel layer after each test.
from tests.test_sockets import QUIET, _clean_layer, connected_inbox, connected_widget  # noqa: F401

SECRET = "Customer is a reseller, check the discount @Bob"


def note_through_its_life(cast) -> list[dict]:
    """Write a note (mentioning Bob), delete it, restore it: the events it made, serialised."""
    mark = last_event_id()
    note = actions.add_note(cast.conversation, by=cast.alice, body=SECRET, mention_employees=[cast.bob])
    actions.delete_message(note, by=cast.alice)
    actions.restore_message(note, by=cast.alice)
    return [serialise(e) for e in Event.objects.filter(id__gt=mark).order_by("id")]


def test_no_event_of_a_note_sends_or_queues_anything_for_the_customer(cast):
    events = note_through_its_life(cast)
    assert [e["type"] for e in events] == ["message.created", "message.deleted", "message.restored"]
    for event in events:
        assert outbound.socket_sends(event) == []
        assert outbound.enqueue(event) is None
    # The same path does carry a reply, so the checks above are not vacuous.
    mark = last_event_id()
    actions.post_reply(cast.conversation, by=cast.alice, body="Public answer")
    [reply] = [serialise(e) for e in Event.objects.filter(id__gt=mark)]
    [(_group, message)] = outbound.socket_sends(reply)
    assert message["message"]["body"] == "Public answer"


def test_the_widget_histories_never_hold_a_note(client, cast):
    note_through_its_life(cast)
    actions.post_reply(cast.conversation, by=cast.alice, body="Public answer")
    # The socket's resume and the session endpoint both read visitor_history.
    assert [m["body"] for m in visitor_history(cast.widget, "visitor-1")] == [
        "Hello, is my order shipped?",
        "Public answer",
    ]
    token, _ = issue_token(cast.widget, "visitor-1")
    response = client.post(
        f"/widget/v1/{cast.widget.public_key}/session",
        json.dumps({"token": token}),
        content_type="application/json",
        headers={"origin": ACME_ORIGIN},
    )
    assert SECRET not in response.content.decode()
    assert [m["body"] for m in response.json()["messages"]] == ["Hello, is my order shipped?", "Public answer"]


def test_a_widget_token_does_not_open_the_api(client, cast):
    note_through_its_life(cast)
    token, _ = issue_token(cast.widget, "visitor-1")
    response = client.get(
        f"/api/v1/conversations/{cast.conversation.pk}/messages/", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 401
    assert SECRET not in response.content.decode()


@pytest.mark.django_db(transaction=True)
async def test_the_visitor_socket_hears_nothing_of_a_note_live_or_on_resume(tcast):
    visitor = await connected_widget(tcast.widget)
    await database_sync_to_async(note_through_its_life)(tcast)
    assert await visitor.receive_nothing(timeout=QUIET)
    await visitor.send_json_to({"type": "resume", "after": 0})
    history = await visitor.receive_json_from()
    assert history["type"] == "history" and SECRET not in json.dumps(history)
    await visitor.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_writing_a_note_shows_no_typing_indicator_to_the_visitor(tcast):
    visitor = await connected_widget(tcast.widget)
    bob = await connected_inbox(tcast.bob)
    await bob.send_json_to({"type": "typing", "conversation_id": tcast.conversation.pk, "mode": "note", "typing": True})
    assert await visitor.receive_nothing(timeout=QUIET)
    await bob.disconnect()
    await visitor.disconnect()
