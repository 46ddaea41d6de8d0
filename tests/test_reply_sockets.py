"""Live: automatic replies reach the widget, blocked contacts reach nobody, contact edits reach the inbox."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from helpdesk.conversations import actions
from tests.test_quick_answers import hours_rule
from tests.test_sockets import (  # noqa: F401  (_clean_layer: the autouse fixture that empties the layer)
    QUIET,
    _clean_layer,
    connected_agent,
    connected_inbox,
    connected_widget,
    events_received,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_automatic_reply_reaches_the_widget_and_the_inbox_marked_automatic(tcast):
    await database_sync_to_async(hours_rule)(tcast)
    alice = await connected_inbox(tcast.alice)
    visitor = await connected_widget(tcast.widget, "asker")
    await visitor.send_json_to({"type": "message", "body": "opening hours?", "client_id": "q" * 32})
    received = [await visitor.receive_json_from() for _ in range(3)]
    shown = [r["message"] for r in received if r["type"] == "message"]
    assert [(m["from"], m["body"]) for m in shown] == [("visitor", "opening hours?"), ("agent", "We work 9 to 6.")]
    events = await events_received(alice)
    assert [e["type"] for e in events] == ["conversation.created", "message.created", "message.created"]
    assert events[2]["payload"]["message"]["automatic"] is True
    await visitor.disconnect()
    await alice.disconnect()


async def test_a_blocked_contacts_message_notifies_no_inbox(tcast):
    await database_sync_to_async(actions.block_contact)(tcast.conversation.contact, by=tcast.alice, reason="Spam")
    alice = await connected_inbox(tcast.alice)
    bob = await connected_agent(tcast.bob)  # online now: the waiting chat is his
    assert [e["type"] for e in await events_received(alice)] == ["conversation.assigned"]
    visitor = await connected_widget(tcast.widget, "visitor-1")
    await visitor.send_json_to({"type": "message", "body": "let me in", "client_id": "b" * 32})
    assert (await visitor.receive_json_from())["type"] == "ack"  # kept, and the visitor is not told
    assert await events_received(alice) == []
    assert await events_received(bob) == []
    await visitor.disconnect()
    await alice.disconnect()
    await bob.disconnect()


async def test_an_edited_contact_reaches_the_inboxes_that_see_the_conversation(tcast):
    bob = await connected_agent(tcast.bob)
    erin = await connected_inbox(tcast.erin)
    await database_sync_to_async(actions.update_contact)(tcast.conversation.contact, by=tcast.alice, name="Anna")
    [event] = await events_received(bob)
    assert event["type"] == "contact.updated" and event["payload"]["contact"]["name"] == "Anna"
    assert event["payload"]["conversation"]["contact_name"] == "Anna"
    assert await erin.receive_nothing(timeout=QUIET)
    await bob.disconnect()
    await erin.disconnect()
