"""The whole road over real sockets: uvicorn, the Redis channel layer, websockets clients.

A visitor writes through the widget socket, an agent's inbox socket receives it live,
the agent replies through the HTTP API, the visitor receives the reply live. Then the
same across two servers sharing Redis, and a reconnect that catches up.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from unittest.mock import ANY
from urllib.parse import quote

import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connection

from helpdesk.conversations import actions
from helpdesk.realtime import sockets
from integrations.widget.visitors import issue_token
from tests.conftest import ACME_ORIGIN
from tests.helpers import last_event_id
from tests.live import LiveServer, ServerProcess, Session, captured_logs

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
TIMEOUT = 5


async def next_of(ws, kind: str) -> dict:
    """The next message of a type, skipping others (hello, pong, ack)."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if message["type"] == kind:
            return message


def start_widget_session(server: LiveServer, channel) -> str:
    request = urllib.request.Request(
        f"{server.url}/widget/v1/{channel.public_key}/session",
        data=b"{}",
        method="POST",
        headers={"Origin": ACME_ORIGIN, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Access-Control-Allow-Origin"] == ACME_ORIGIN
        return json.loads(response.read())["token"]


async def open_visitor(server: LiveServer, channel, token: str | None = None):
    """A visitor's socket as the widget opens it: the token in the first frame, never the URL."""
    ws = await websockets.connect(f"{server.ws_url}/ws/widget/{channel.public_key}/", origin=ACME_ORIGIN)
    if token is not None:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert (await next_of(ws, "hello"))["type"] == "hello"
    return ws


async def open_inbox(server: LiveServer, session: Session):
    ws = await websockets.connect(
        f"{server.ws_url}/ws/inbox/", origin=server.url, additional_headers={"Cookie": session.cookie}
    )
    await next_of(ws, "hello")
    return ws


async def round_trip(visitor_server: LiveServer, agent_server: LiveServer, cast) -> None:
    session = await sync_to_async(Session.of)(agent_server, cast.alice)
    token = await sync_to_async(start_widget_session)(visitor_server, cast.widget)
    async with (
        await open_inbox(agent_server, session) as inbox,
        await open_visitor(visitor_server, cast.widget, token) as visitor,
    ):
        await visitor.send(json.dumps({"type": "message", "body": "Is it in stock?", "client_id": "a1" * 16}))
        ack = await next_of(visitor, "ack")
        event = (await next_of(inbox, "event"))["event"]
        while event["type"] != "message.created":
            event = (await next_of(inbox, "event"))["event"]
        assert event["payload"]["message"]["id"] == ack["message_id"]
        assert event["payload"]["message"]["body"] == "Is it in stock?"

        conversation_id = event["conversation_id"]
        status, _ = await sync_to_async(session.post)(
            f"/api/v1/conversations/{conversation_id}/reply", {"body": "Yes, 12 left."}
        )
        assert status == 201
        reply = await next_of(visitor, "message")
        while reply["message"]["from"] != "agent":
            reply = await next_of(visitor, "message")
        assert (reply["message"]["body"], reply["message"]["author_name"]) == ("Yes, 12 left.", "Alice")


def test_visitor_to_agent_and_back_over_real_websockets(asgi_server, redis_layer, tcast):
    asyncio.run(round_trip(asgi_server, asgi_server, tcast))


@pytest.mark.postgres
def test_two_server_processes_sharing_redis_carry_the_chat_between_them(asgi_server, redis_layer, tcast):
    if connection.vendor != "postgresql":
        pytest.skip("a second server process needs a shared database server")
    second = ServerProcess().start()
    try:
        asyncio.run(round_trip(visitor_server=asgi_server, agent_server=second, cast=tcast))
    finally:
        second.stop()


def test_an_inbox_that_reconnects_gets_what_it_missed(asgi_server, redis_layer, tcast):
    session = Session.of(asgi_server, tcast.bob)

    async def scenario():
        async with await open_inbox(asgi_server, session):
            seen = await database_sync_to_async(last_event_id)()
        # While Bob's socket is gone, the customer writes and Alice answers.
        await database_sync_to_async(actions.receive_message)(
            channel=tcast.widget, external_contact_id="visitor-1", body="Hello again"
        )
        await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.alice, body="Hi!")
        async with await open_inbox(asgi_server, session) as inbox:
            await inbox.send(json.dumps({"type": "resume", "after": seen}))
            catchup = await next_of(inbox, "catchup")
        bodies = [e["payload"]["message"]["body"] for e in catchup["events"] if e["id"] > seen]
        assert bodies == ["Hello again", "Hi!"]

    asyncio.run(scenario())


def test_a_foreign_widget_token_is_refused_over_a_real_socket(asgi_server, tcast):
    token, _ = issue_token(tcast.globex_widget, "x")

    async def scenario():
        async with await open_visitor(asgi_server, tcast.widget) as ws:
            await ws.send(json.dumps({"type": "auth", "token": token}))
            error = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            assert error["code"] == "token_invalid"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
            assert closed.value.rcvd.code == 4401

    asyncio.run(scenario())


def test_the_access_log_of_a_widget_conversation_holds_no_token(tcast):
    """uvicorn logs every request's and socket's path; the visitor's token is in none of them."""
    server = LiveServer(log_level="info").start()
    try:
        with captured_logs() as lines:
            token = start_widget_session(server, tcast.widget)

            async def chat():
                async with await open_visitor(server, tcast.widget, token) as visitor:
                    await visitor.send(json.dumps({"type": "message", "body": "Hi", "client_id": "b2" * 16}))
                    return await next_of(visitor, "ack")

            ack = asyncio.run(chat())
    finally:
        server.stop()
    assert ack["message_id"]
    log = "\n".join(lines)
    # The capture really holds the access log: the session request and the socket's handshake.
    assert f"POST /widget/v1/{tcast.widget.public_key}/session" in log
    assert f"/ws/widget/{tcast.widget.public_key}/" in log
    assert token not in log and quote(token) not in log and "token=" not in log


def test_a_token_in_the_url_is_refused_over_a_real_socket(asgi_server, tcast):
    token = start_widget_session(asgi_server, tcast.widget)

    async def scenario():
        url = f"{asgi_server.ws_url}/ws/widget/{tcast.widget.public_key}/?token={quote(token)}"
        async with websockets.connect(url, origin=ACME_ORIGIN) as ws:
            error = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        return error, closed.value.rcvd.code

    assert asyncio.run(scenario()) == (
        {"type": "error", "code": "token_in_url", "message": ANY, "client_id": None},
        4400,
    )


async def idle_then_event(server: LiveServer, cast, idle: float) -> None:
    session = await sync_to_async(Session.of)(server, cast.alice)
    async with await open_inbox(server, session) as inbox:
        # Longer than redis-py's default 5 s read timeout and channels_redis' 5 s BZPOPMIN:
        # with those equal, a quiet layer timed out and the server closed idle sockets.
        await asyncio.sleep(idle)
        await database_sync_to_async(actions.add_note)(cast.conversation, by=cast.alice, body="still here?")
        event = (await next_of(inbox, "event"))["event"]
        assert event["payload"]["message"]["body"] == "still here?"


def test_an_idle_inbox_socket_stays_open_and_live(asgi_server, redis_layer, tcast):
    asyncio.run(idle_then_event(asgi_server, tcast, idle=7))


@pytest.mark.postgres
def test_concurrent_requests_share_a_bounded_pool_of_database_connections(asgi_server, tcast, settings):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only: the connection pool")
    pool = settings.DATABASES["default"]["OPTIONS"]["pool"]
    # Under ASGI each request runs in a thread of its own; without a pool every thread kept
    # a connection and PostgreSQL ran out ("too many clients"). With it they take turns.
    session = Session.of(asgi_server, tcast.alice)

    def get(path: str) -> int:
        request = urllib.request.Request(asgi_server.url + path, headers={"Cookie": session.cookie})
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status

    import threading
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    db = settings.DATABASES["default"]
    peak, done = [0], threading.Event()

    def watch() -> None:
        # A connection of its own, outside Django and its pool, sampling while the load runs.
        with psycopg.connect(host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"]) as watcher:
            while not done.is_set():
                (count,) = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                peak[0] = max(peak[0], count)
                done.wait(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=40) as workers:
            statuses = list(workers.map(get, ["/api/v1/conversations/?view=all"] * 160))
    finally:
        done.set()
        watcher.join()
    assert set(statuses) == {200}
    # The pool's connections, plus this test's own and the live server's database thread.
    assert 0 < peak[0] <= pool["max_size"] + 3


async def typing_to_three_tabs(server: LiveServer, cast) -> None:
    alice, bob = [await sync_to_async(Session.of)(server, who) for who in (cast.alice, cast.bob)]
    tabs = [await open_inbox(server, alice) for _ in range(3)]
    other = await open_inbox(server, bob)
    try:
        # One reader of the Redis layer for the server loop's four sockets, one task: no queue
        # and no waiting tasks per socket (issue 11: an idle socket's memory).
        (reader,) = [reader for reader in sockets._readers.values() if reader.sockets]
        assert len(reader.sockets) == 4 and reader.task is not None and not reader.task.done()
        # Typing rides only the channel layer: it reaches each of alice's tabs, once.
        frame = {"type": "typing", "conversation_id": cast.conversation.pk, "mode": "reply", "typing": True}
        await other.send(json.dumps(frame))
        for tab in tabs:
            notice = await next_of(tab, "typing")
            assert (notice["conversation_id"], notice["employee_id"]) == (cast.conversation.pk, cast.bob.pk)
    finally:
        for ws in (*tabs, other):
            await ws.close()
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while reader.sockets or reader.task is not None:  # the last socket out stops the reader
        assert asyncio.get_running_loop().time() < deadline, reader.sockets
        await asyncio.sleep(0.05)


def test_the_sockets_of_a_process_share_one_reader_of_the_channel_layer(asgi_server, redis_layer, tcast):
    asyncio.run(typing_to_three_tabs(asgi_server, tcast))
