"""Live over the sockets: typing both ways, read state across tabs, mentions and wake-ups.

Typing and "read" are notices, not events: nothing is stored, and who hears them is still
the gate's decision (an inbox socket hears about a conversation only if it may see it).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from helpdesk.conversations import actions
from helpdesk.events.models import Event

# _clean_layer: test_sockets' autouse fixture, which empties the channel layer after each test.
from tests.test_sockets import (  # noqa: F401
    QUIET,
    _clean_layer,
    connected_agent,
    connected_inbox,
    connected_widget,
    events_received,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def received(communicator) -> list[dict]:
    """Everything a socket is sent until it has been quiet for a moment (colleagues' presence aside)."""
    out = []
    while not await communicator.receive_nothing(timeout=QUIET):
        message = await communicator.receive_json_from()
        if message["type"] != "presence":
            out.append(message)
    return out


async def inboxes(cast, *names: str) -> dict:
    """Open inboxes, then let what opening them set off settle: Bob coming online takes the waiting chat."""
    sockets = {name: await connected_inbox(getattr(cast, name)) for name in names}
    for socket in sockets.values():
        await received(socket)
    return sockets


async def close(*communicators) -> None:
    for communicator in communicators:
        await communicator.disconnect()


# --- The visitor types ------------------------------------------------------------------------------


async def test_a_visitor_typing_reaches_only_the_inboxes_that_may_see_the_chat(tcast):
    sockets = await inboxes(tcast, "alice", "bob", "erin", "dave", "carol")
    visitor = await connected_widget(tcast.widget)
    await visitor.send_json_to({"type": "typing", "typing": True})
    heard = {name: await received(s) for name, s in sockets.items()}
    expected = {"type": "typing", "conversation_id": tcast.conversation.pk, "from": "visitor", "typing": True}
    assert heard["alice"] == heard["bob"] == [expected]
    assert heard["erin"] == heard["dave"] == heard["carol"] == []
    await visitor.send_json_to({"type": "typing", "typing": False})
    assert [m["typing"] for m in await received(sockets["bob"])] == [False]
    assert await received(sockets["erin"]) == []
    await close(visitor, *sockets.values())


async def test_a_visitor_who_has_written_nothing_yet_types_to_nobody(tcast):
    alice = await connected_inbox(tcast.alice)
    visitor = await connected_widget(tcast.widget, "brand-new-visitor")
    await visitor.send_json_to({"type": "typing", "typing": True})
    assert await received(alice) == []
    await close(alice, visitor)


async def test_typing_notices_are_throttled_and_a_stop_passes_once_after_typing(tcast):
    alice = await connected_inbox(tcast.alice)
    visitor = await connected_widget(tcast.widget)
    await visitor.send_json_to({"type": "typing", "typing": False})  # not typing yet: nothing to stop
    for _ in range(5):
        await visitor.send_json_to({"type": "typing", "typing": True})
    for _ in range(3):
        await visitor.send_json_to({"type": "typing", "typing": False})
    assert [m["typing"] for m in await received(alice)] == [True, False]
    await close(alice, visitor)


async def test_a_bad_typing_notice_is_answered_with_an_error(tcast):
    visitor = await connected_widget(tcast.widget)
    await visitor.send_json_to({"type": "typing", "typing": "yes"})
    assert (await visitor.receive_json_from())["code"] == "bad_typing"
    bob = await connected_agent(tcast.bob)
    for bad in (
        {"type": "typing", "conversation_id": "1", "mode": "reply", "typing": True},
        {"type": "typing", "conversation_id": tcast.conversation.pk, "mode": "shout", "typing": True},
        {"type": "typing", "conversation_id": tcast.conversation.pk, "mode": "reply"},
    ):
        await bob.send_json_to(bad)
        assert (await bob.receive_json_from())["code"] == "bad_typing"
    await close(visitor, bob)


# --- An agent types -----------------------------------------------------------------------------------


def typing(conversation, mode: str, on: bool = True) -> dict:
    return {"type": "typing", "conversation_id": conversation.pk, "mode": mode, "typing": on}


async def test_an_agent_typing_a_reply_shows_on_the_visitors_side_and_to_colleagues(tcast):
    visitor = await connected_widget(tcast.widget)
    bob, bob_other_tab = await connected_inbox(tcast.bob), await connected_inbox(tcast.bob)
    others = await inboxes(tcast, "alice", "erin", "carol")
    await bob.send_json_to(typing(tcast.conversation, "reply"))
    assert await received(visitor) == [{"type": "typing", "name": "Bob", "typing": True}]
    [notice] = await received(others["alice"])
    assert (notice["from"], notice["name"], notice["mode"], notice["employee_id"]) == (
        "agent",
        "Bob",
        "reply",
        tcast.bob.pk,
    )
    # Never echoed to Bob's own tabs; nothing for those who can't see the chat.
    assert await received(bob_other_tab) == []
    assert await received(others["erin"]) == await received(others["carol"]) == []
    await bob.send_json_to(typing(tcast.conversation, "reply", on=False))
    assert await received(visitor) == [{"type": "typing", "name": "Bob", "typing": False}]
    await close(visitor, bob, bob_other_tab, *others.values())


async def test_an_agent_writing_a_note_is_shown_to_colleagues_only(tcast):
    visitor = await connected_widget(tcast.widget)
    bob, alice = await connected_inbox(tcast.bob), await connected_inbox(tcast.alice)
    await bob.send_json_to(typing(tcast.conversation, "note"))
    assert [m["mode"] for m in await received(alice)] == ["note"]
    assert await received(visitor) == []
    await close(visitor, bob, alice)


@pytest.mark.parametrize("who", ["erin", "carol"])
async def test_typing_in_a_conversation_one_may_not_see_tells_nobody_anything(tcast, who):
    visitor = await connected_widget(tcast.widget)
    intruder, alice = await connected_inbox(getattr(tcast, who)), await connected_inbox(tcast.alice)
    await intruder.send_json_to(typing(tcast.conversation, "reply"))
    assert await received(visitor) == []
    assert await received(alice) == []
    assert await received(intruder) == []
    await close(visitor, intruder, alice)


# --- Read state across tabs ---------------------------------------------------------------------------


async def test_reading_in_one_tab_clears_the_badge_in_the_employees_other_tabs(tcast):
    tab1, tab2 = await connected_inbox(tcast.bob), await connected_inbox(tcast.bob)
    alice = await connected_inbox(tcast.alice)
    for socket in (tab1, tab2, alice):
        await received(socket)  # Bob came online: the waiting chat was handed to him
    await database_sync_to_async(actions.mark_read)(tcast.conversation, employee=tcast.bob)
    expected = {
        "type": "read",
        "conversation_id": tcast.conversation.pk,
        "last_read_message_id": tcast.first_message.pk,
    }
    assert await received(tab1) == await received(tab2) == [expected]
    assert await received(alice) == []  # her own read state is hers
    # Nothing new was read: nobody is told again.
    await database_sync_to_async(actions.mark_read)(tcast.conversation, employee=tcast.bob)
    assert await received(tab1) == []
    await close(tab1, tab2, alice)


async def test_an_admin_with_all_scope_hears_about_her_own_reading_too(tcast):
    # All-scope sockets join only the company group for events; the personal group is extra.
    tab = await connected_inbox(tcast.alice)
    await database_sync_to_async(actions.mark_read)(tcast.conversation, employee=tcast.alice)
    assert [m["type"] for m in await received(tab)] == ["read"]
    await close(tab)


# --- Mentions and wake-ups ------------------------------------------------------------------------------


async def test_a_mention_reaches_the_mentioned_live_and_never_those_who_cant_see_the_chat(tcast):
    sockets = await inboxes(tcast, "bob", "erin", "carol")
    await database_sync_to_async(actions.add_note)(
        tcast.conversation,
        by=tcast.alice,
        body="@Bob @Sales",
        mention_employees=[tcast.bob],
        mention_teams=[tcast.sales],
    )
    [event] = await events_received(sockets["bob"])
    assert event["type"] == "message.created"
    assert event["payload"]["mentions"] == {"employee_ids": [tcast.bob.pk], "team_ids": [tcast.sales.pk]}
    assert await events_received(sockets["erin"]) == await events_received(sockets["carol"]) == []
    await close(*sockets.values())


async def test_the_assignee_hears_live_that_the_customer_woke_their_conversation(tcast):
    await database_sync_to_async(actions.assign)(tcast.conversation, by=tcast.alice, assignee=tcast.dave)
    await database_sync_to_async(actions.snooze)(
        tcast.conversation, by=tcast.dave, until=timezone.now() + timedelta(hours=3)
    )
    dave = await connected_inbox(tcast.dave)  # he sees only what is assigned to him
    visitor = await connected_widget(tcast.widget)
    await visitor.send_json_to({"type": "message", "body": "Still there?", "client_id": "w" * 16})
    events = await events_received(dave)
    woken = next(e for e in events if e["type"] == "conversation.woken")
    assert woken["payload"]["reason"] == "customer"
    assert woken["payload"]["conversation"]["status"] == "open"
    assert await database_sync_to_async(Event.objects.filter(type="conversation.woken").count)() == 1
    await close(dave, visitor)
