"""Inbox and widget sockets through Channels' communicator on the real ASGI application.

Each socket counts the events it receives: an employee gets exactly the events of the
conversations their scope covers, and nothing of another company.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connection, transaction
from django.test import Client

from helpdesk.accounts.models import Employee
from helpdesk.conversations import actions
from helpdesk.conversations.models import Message
from helpdesk.realtime import fanout
from helpdesk.realtime.catchup import events_after
from integrations.widget import consumers as widget_consumers
from integrations.widget.visitors import issue_token
from smartchat.asgi import application
from tests.conftest import ACME_ORIGIN
from tests.helpers import last_event_id

pytestmark = pytest.mark.django_db(transaction=True)
QUIET = 0.3  # seconds a socket must stay silent to count as "received nothing"


@pytest.fixture(autouse=True)
async def _clean_layer():
    yield
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()


def session_cookie(employee) -> str:
    client = Client()
    client.force_login(employee.user)
    return client.cookies["sessionid"].value


async def inbox_socket(employee=None, *, origin: str = "http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())]
    if employee is not None:
        cookie = await database_sync_to_async(session_cookie)(employee)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/inbox/", headers=headers)


async def connected_inbox(employee) -> WebsocketCommunicator:
    communicator = await inbox_socket(employee)
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "hello"
    return communicator


async def events_received(communicator) -> list[dict]:
    out = []
    while not await communicator.receive_nothing(timeout=QUIET):
        message = await communicator.receive_json_from()
        if message["type"] == "presence":  # a colleague opened their inbox: not an event
            continue
        assert message["type"] == "event"
        out.append(message["event"])
    return out


async def connected_agent(employee) -> WebsocketCommunicator:
    """An agent's inbox: opening it makes them online, and the queue's waiting chat is theirs."""
    communicator = await connected_inbox(employee)
    assert [e["type"] for e in await events_received(communicator)] == ["conversation.assigned"]
    return communicator


async def test_an_anonymous_inbox_socket_is_closed(tcast):
    communicator = await inbox_socket(None)
    connected, code = await communicator.connect()
    assert (connected, code) == (False, 4401)


async def test_an_inbox_socket_from_a_foreign_page_is_refused(tcast):
    communicator = await inbox_socket(tcast.alice, origin="https://evil.test")
    connected, _ = await communicator.connect()
    assert not connected


async def test_each_scope_receives_exactly_its_events(tcast):
    sockets = {name: await connected_inbox(getattr(tcast, name)) for name in ("alice", "erin", "dave", "carol")}
    sockets["bob"] = await connected_agent(tcast.bob)
    for socket in sockets.values():
        await events_received(socket)  # Alice heard the chat go to Bob
    # A new message in the Sales conversation: admins and Sales see it, nobody else.
    await database_sync_to_async(actions.receive_message)(
        channel=tcast.widget, external_contact_id="visitor-1", body="Anyone there?"
    )
    received = {name: await events_received(s) for name, s in sockets.items()}
    assert [e["type"] for e in received["alice"]] == ["message.created"]
    assert [e["type"] for e in received["bob"]] == ["message.created"]
    assert received["erin"] == received["dave"] == received["carol"] == []
    assert received["bob"][0]["payload"]["message"]["body"] == "Anyone there?"
    for s in sockets.values():
        await s.disconnect()


async def test_an_event_reaching_two_of_a_sockets_groups_arrives_once(tcast):
    # Bob sees the chat through his team and, once assigned, through his own group too.
    await database_sync_to_async(actions.assign)(tcast.conversation, by=tcast.alice, assignee=tcast.bob)
    bob = await connected_inbox(tcast.bob)
    await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.alice, body="one")
    assert [e["type"] for e in await events_received(bob)] == ["message.created"]
    await bob.disconnect()


async def test_reassigning_out_of_scope_tells_the_old_viewer_it_is_gone(tcast):
    bob = await connected_agent(tcast.bob)
    erin = await connected_inbox(tcast.erin)
    await database_sync_to_async(actions.assign)(
        tcast.conversation, by=tcast.alice, team=tcast.support, assignee=tcast.erin
    )
    [to_bob] = await events_received(bob)
    [to_erin] = await events_received(erin)
    assert to_bob["type"] == to_erin["type"] == "conversation.assigned"
    assert to_bob["visible"] is False and to_erin["visible"] is True
    # From now on Bob hears nothing about it.
    await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.erin, body="mine now")
    assert await events_received(bob) == []
    assert len(await events_received(erin)) == 1
    await bob.disconnect()
    await erin.disconnect()


async def test_a_reconnecting_socket_catches_up_on_what_it_missed(tcast):
    first = await connected_inbox(tcast.bob)
    seen = await database_sync_to_async(last_event_id)()
    await first.disconnect()
    await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.alice, body="while you were away")
    await database_sync_to_async(actions.resolve)(tcast.conversation, by=tcast.alice)
    second = await connected_inbox(tcast.bob)
    await second.send_json_to({"type": "resume", "after": seen})
    reply = await second.receive_json_from()
    assert reply["type"] == "catchup" and reply["reset"] is False
    missed = [e for e in reply["events"] if e["id"] > seen]
    assert [e["type"] for e in missed] == ["message.created", "conversation.resolved"]
    # The window before `seen` is re-sent on purpose (late committers); the client drops known ids.
    assert all(e["conversation_id"] == tcast.conversation.pk for e in reply["events"])
    await second.disconnect()


async def test_catch_up_never_includes_other_scopes_or_companies(tcast):
    await database_sync_to_async(actions.receive_message)(
        channel=tcast.globex_widget, external_contact_id="g1", body="globex secret"
    )
    erin = await connected_inbox(tcast.erin)
    await erin.send_json_to({"type": "resume", "after": 0})
    reply = await erin.receive_json_from()
    assert reply["events"] == []
    await erin.disconnect()


async def test_a_bad_resume_is_answered_with_an_error(tcast):
    bob = await connected_agent(tcast.bob)
    await bob.send_json_to({"type": "resume", "after": "yesterday"})
    assert (await bob.receive_json_from())["code"] == "bad_resume"
    await bob.send_json_to(["not", "an", "object"])
    assert (await bob.receive_json_from())["code"] == "bad_message"
    await bob.disconnect()


def test_catch_up_rereads_a_window_so_a_late_committer_is_not_skipped(cast):
    """Event N+1 may be delivered before event N commits: resuming after N+1 still returns N."""
    actions.post_reply(cast.conversation, by=cast.alice, body="first")
    late = last_event_id()
    actions.post_reply(cast.conversation, by=cast.alice, body="second")
    newest = last_event_id()
    events, reset = events_after(cast.bob, newest)
    assert not reset
    assert late in [e["id"] for e in events]


# --- The widget socket -----------------------------------------------------------------------------


async def widget_socket(channel, token: str, origin: str = ACME_ORIGIN) -> WebsocketCommunicator:
    """A visitor's socket, opened; its first frame (sent here) carries the token."""
    communicator = WebsocketCommunicator(
        application, f"/ws/widget/{channel.public_key}/", headers=[(b"origin", origin.encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"type": "auth", "token": token})
    return communicator


async def connected_widget(channel, visitor_id: str = "visitor-1") -> WebsocketCommunicator:
    token, _ = await sync_to_async(issue_token)(channel, visitor_id)
    communicator = await widget_socket(channel, token)
    hello = await communicator.receive_json_from()
    assert hello["type"] == "hello"
    return communicator


async def test_a_visitor_message_is_stored_acked_and_reaches_agents_live(tcast):
    alice = await connected_inbox(tcast.alice)
    visitor = await connected_widget(tcast.widget, "new-visitor")
    await visitor.send_json_to({"type": "message", "body": "Do you ship to Kazan?", "client_id": "c" * 32})
    replies = [await visitor.receive_json_from(), await visitor.receive_json_from()]
    by_type = {r["type"]: r for r in replies}
    assert by_type["ack"]["client_id"] == "c" * 32
    assert by_type["message"]["message"]["from"] == "visitor"
    events = await events_received(alice)
    assert [e["type"] for e in events] == ["conversation.created", "message.created"]
    # Sent twice (a retry after a reconnect): stored once.
    await visitor.send_json_to({"type": "message", "body": "Do you ship to Kazan?", "client_id": "c" * 32})
    assert (await visitor.receive_json_from())["type"] == "ack"
    count = await database_sync_to_async(Message.objects.filter(body="Do you ship to Kazan?").count)()
    assert count == 1
    await alice.disconnect()
    await visitor.disconnect()


async def test_agents_replies_reach_the_visitor_and_notes_never_do(tcast):
    visitor = await connected_widget(tcast.widget)
    await database_sync_to_async(actions.add_note)(tcast.conversation, by=tcast.bob, body="internal only")
    assert await visitor.receive_nothing(timeout=QUIET)
    await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.bob, body="Yes, we do")
    message = (await visitor.receive_json_from())["message"]
    assert (message["from"], message["body"], message["author_name"]) == ("agent", "Yes, we do", "Bob")
    assert await visitor.receive_nothing(timeout=QUIET)
    await visitor.disconnect()


async def test_a_visitor_resuming_gets_only_customer_visible_messages(tcast):
    await database_sync_to_async(actions.add_note)(tcast.conversation, by=tcast.bob, body="internal only")
    await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.bob, body="public")
    visitor = await connected_widget(tcast.widget)
    await visitor.send_json_to({"type": "resume", "after": tcast.first_message.pk})
    history = await visitor.receive_json_from()
    assert [m["body"] for m in history["messages"]] == ["public"]
    await visitor.disconnect()


async def test_a_too_long_widget_message_is_refused_and_stores_nothing(tcast):
    visitor = await connected_widget(tcast.widget, "long-visitor")
    await visitor.send_json_to({"type": "message", "body": "x" * 5001, "client_id": "d" * 32})
    error = await visitor.receive_json_from()
    assert (error["type"], error["code"], error["client_id"]) == ("error", "too_long", "d" * 32)
    assert not await database_sync_to_async(Message.objects.filter(body__startswith="xxxx").exists)()
    await visitor.disconnect()


@pytest.mark.parametrize(
    ("case", "code", "close"),
    [("forged", "token_invalid", 4401), ("foreign", "token_invalid", 4401), ("origin", "origin_denied", 4403)],
)
async def test_bad_widget_sockets_are_told_why_and_closed(tcast, case, code, close):
    token, _ = await sync_to_async(issue_token)(tcast.globex_widget if case == "foreign" else tcast.widget, "v")
    if case == "forged":
        token = token[:-4] + "AAAA"
    origin = "https://evil.test" if case == "origin" else ACME_ORIGIN
    communicator = await widget_socket(tcast.widget, token, origin)
    error = await communicator.receive_json_from()
    assert (error["type"], error["code"]) == ("error", code)
    assert (await communicator.receive_output())["code"] == close
    await communicator.send_json_to({"type": "message", "body": "sneaky", "client_id": "e" * 32})
    assert not await database_sync_to_async(Message.objects.filter(body="sneaky").exists)()


async def refused(communicator: WebsocketCommunicator) -> tuple[str, int]:
    """The error frame's code and the close code of a socket the server turned away."""
    error = await communicator.receive_json_from()
    assert error["type"] == "error" and error["message"]
    return error["code"], (await communicator.receive_output())["code"]


@pytest.mark.parametrize("query", ["token={token}", "token=", "lang=en&token={token}"])
async def test_a_token_in_the_url_is_refused(tcast, query):
    token, _ = await sync_to_async(issue_token)(tcast.widget, "visitor-1")
    url = f"/ws/widget/{tcast.widget.public_key}/?" + query.format(token=token)
    communicator = WebsocketCommunicator(application, url, headers=[(b"origin", ACME_ORIGIN.encode())])
    assert (await communicator.connect())[0]
    assert await refused(communicator) == ("token_in_url", 4400)


@pytest.mark.parametrize(
    "first",
    [
        {"type": "message", "body": "sneaky", "client_id": "e" * 32},
        {"type": "resume", "after": 0},
        {"type": "auth"},
        {"type": "auth", "token": ["not", "text"]},
        ["auth"],
        "not JSON",
        b"binary",
    ],
)
async def test_any_first_frame_but_auth_is_refused_and_closes(tcast, first):
    communicator = WebsocketCommunicator(
        application, f"/ws/widget/{tcast.widget.public_key}/", headers=[(b"origin", ACME_ORIGIN.encode())]
    )
    assert (await communicator.connect())[0]
    if isinstance(first, bytes):
        await communicator.send_to(bytes_data=first)
    elif isinstance(first, str):
        await communicator.send_to(text_data=first)
    else:
        await communicator.send_json_to(first)
    code, close = await refused(communicator)
    assert code in ("auth_required", "bad_json", "binary_frame") and close == 4400
    assert not await database_sync_to_async(Message.objects.filter(body="sneaky").exists)()


async def test_a_socket_that_never_authenticates_is_closed(tcast, monkeypatch):
    monkeypatch.setattr(widget_consumers, "AUTH_SECONDS", 0.2)
    communicator = WebsocketCommunicator(
        application, f"/ws/widget/{tcast.widget.public_key}/", headers=[(b"origin", ACME_ORIGIN.encode())]
    )
    assert (await communicator.connect())[0]
    assert await refused(communicator) == ("auth_timeout", 4408)


async def test_an_authenticated_socket_is_not_closed_by_the_deadline(tcast, monkeypatch):
    monkeypatch.setattr(widget_consumers, "AUTH_SECONDS", 0.2)
    visitor = await connected_widget(tcast.widget)
    assert await visitor.receive_nothing(timeout=0.5)
    await visitor.send_json_to({"type": "ping"})
    assert (await visitor.receive_json_from())["type"] == "pong"
    await visitor.disconnect()


async def test_the_widget_shows_the_team_online_while_an_agent_has_the_inbox_open(tcast):
    token, _ = await sync_to_async(issue_token)(tcast.widget, "v-online")
    visitor = await widget_socket(tcast.widget, token)
    assert (await visitor.receive_json_from())["online"] is False
    # Alice is online but not in Sales, the team this widget's chats go to: still "away".
    alice = await connected_inbox(tcast.alice)
    await visitor.send_json_to({"type": "ping"})
    assert await visitor.receive_json_from() == {"type": "pong", "online": False}
    bob = await connected_inbox(tcast.bob)  # opening the inbox makes him online
    await visitor.send_json_to({"type": "ping"})
    assert await visitor.receive_json_from() == {"type": "pong", "online": True}
    await visitor.disconnect()
    await alice.disconnect()
    await bob.disconnect()


async def test_without_a_shared_layer_a_ping_fetches_events_written_elsewhere(tcast, settings, monkeypatch):
    """The embedded default: a worker process's events reach open inboxes once, relay or ping first.

    The relay polls the log (it is not woken: ``publish`` is not called here, as in another
    process); a ping's catch-up may find the event first. Either way it arrives exactly once.
    """
    settings.REALTIME_CATCHUP_ON_PING = True
    bob = await connected_agent(tcast.bob)
    seen = await database_sync_to_async(last_event_id)()
    # As if written by the Celery worker: committed, but not published in this process.
    monkeypatch.setattr(fanout, "publish", lambda event: None)
    await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.alice, body="from the worker")
    heard: list[str] = []
    for _ in range(2):  # a ping, then another: the second must not repeat anything
        await bob.send_json_to({"type": "ping", "after": seen})
        frames = [await bob.receive_json_from()]
        while frames[-1]["type"] != "catchup":
            frames.append(await bob.receive_json_from())
        assert "pong" in [frame["type"] for frame in frames]
        for frame in frames:
            if frame["type"] == "event":
                heard.append(frame["event"]["type"])
            elif frame["type"] == "catchup":
                heard += [e["type"] for e in frame["events"] if e["id"] > seen]
    heard += [e["type"] for e in await events_received(bob)]  # the relay's poll, if it came last
    assert heard == ["message.created"]
    await bob.disconnect()


async def test_with_a_shared_layer_a_ping_is_only_a_heartbeat(tcast, settings):
    settings.REALTIME_CATCHUP_ON_PING = False
    bob = await connected_agent(tcast.bob)
    await bob.send_json_to({"type": "ping", "after": 0})
    assert (await bob.receive_json_from())["type"] == "pong"
    assert await bob.receive_nothing(timeout=0.3)
    await bob.disconnect()


async def test_an_event_reaches_a_socket_while_its_ping_waits_on_the_database(tcast, settings):
    """A ping's heartbeat runs beside the socket's events, not before them.

    Bob's employee row is held by another transaction, so his ping's heartbeat (an UPDATE of
    that row) waits. A note posted meanwhile still reaches his socket at once; the pong comes
    once the row is free. Handled in turn, the event waited behind the heartbeat: 300
    agents' pings arriving together held one event's fan-out back by their database writes.
    """
    settings.REALTIME_CATCHUP_ON_PING = False
    bob = await connected_agent(tcast.bob)
    held, release = threading.Event(), threading.Event()

    def hold_bobs_row() -> None:
        with transaction.atomic():
            Employee.objects.select_for_update(no_key=True).get(pk=tcast.bob.pk)
            held.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=hold_bobs_row)
    holder.start()
    try:
        assert await asyncio.to_thread(held.wait, 10)
        await bob.send_json_to({"type": "ping", "after": 0})
        await database_sync_to_async(actions.add_note)(tcast.conversation, by=tcast.alice, body="while you ping")
        frame = await bob.receive_json_from(timeout=3)
        assert frame["type"] == "event"
        assert frame["event"]["payload"]["message"]["body"] == "while you ping"
        assert await bob.receive_nothing(timeout=0.3)  # the heartbeat still waits for the row
    finally:
        release.set()
        await asyncio.to_thread(holder.join, 10)
    assert (await bob.receive_json_from(timeout=5))["type"] == "pong"
    await bob.disconnect()


async def test_pings_in_quick_succession_make_one_heartbeat_at_a_time(tcast, settings):
    settings.REALTIME_CATCHUP_ON_PING = False
    bob = await connected_agent(tcast.bob)
    for _ in range(3):
        await bob.send_json_to({"type": "ping", "after": 0})
    assert (await bob.receive_json_from(timeout=5))["type"] == "pong"
    # The later pings arrived while the first one's heartbeat was under way: it answered them.
    assert await bob.receive_nothing(timeout=0.5)
    await bob.send_json_to({"type": "ping", "after": 0})
    assert (await bob.receive_json_from(timeout=5))["type"] == "pong"
    await bob.disconnect()


async def _memberships(layer) -> dict[tuple[str, str], float]:
    """Every (group, channel) of this test process's layer prefix, with the time it was (last) joined."""
    connection = layer.connection(0)
    joined = {}
    for key in await connection.keys(f"{layer.prefix}:group:*"):
        for member, score in await connection.zrange(key, 0, -1, withscores=True):
            joined[key.decode(), member.decode()] = score
    return joined


async def test_a_ping_joins_the_layer_groups_again_only_once_the_layer_lost_them(tcast, monkeypatch):
    # Joining again at every ping cost six Redis round trips per socket and ping (1,800 at once
    # when 300 tabs reconnected together ping together). A ping now joins again only when Redis
    # lost its data (the process's marker is gone): then typing and presence are heard again.
    from channels.layers import get_channel_layer

    from helpdesk.realtime import sockets

    layer = get_channel_layer()
    if not hasattr(layer, "receive_single"):
        pytest.skip("the in-memory layer never loses its groups")
    alice = await connected_inbox(tcast.alice)
    before = await _memberships(layer)
    assert before, "the socket joined no group"
    await asyncio.sleep(0.05)
    monkeypatch.setattr(sockets, "LAYER_CHECK_SECONDS", 0.0)  # every ping asks Redis
    await alice.send_json_to({"type": "ping", "after": 0})
    assert (await alice.receive_json_from())["type"] == "pong"
    assert await _memberships(layer) == before  # nothing joined again: Redis kept it all

    # Redis loses its data (as a restart with nothing kept does): the groups and the marker.
    connection = layer.connection(0)
    lost = await connection.keys(f"{layer.prefix}:*")
    assert lost and await connection.delete(*lost)
    await alice.send_json_to({"type": "ping", "after": 0})
    assert (await alice.receive_json_from())["type"] == "pong"
    after = await _memberships(layer)
    assert set(after) == set(before) and all(after[key] > before[key] for key in before)
    await alice.disconnect()
