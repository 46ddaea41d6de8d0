"""The live chat's raw limit: the same work per message as Smartchat, without Django.

A bare ASGI app (run by plain uvicorn, one process) that, for every visitor message on a
widget-like socket, does what the product must do at the least:

1. one transaction on PostgreSQL (psycopg 3, async, a small pool): insert the message, and
   update its conversation (the conversation is inserted with the visitor's first message);
2. one Redis publish (redis-py asyncio) of the event;
3. an ack to the visitor; the process's one subscriber pushes each published event to every
   open agent socket.

It speaks just enough of Smartchat's frames for ``bench/live_chat.py``'s own client code:
``/ws/widget/<key>/`` (auth -> hello, message -> ack, ping/resume ignored) and ``/ws/inbox/``
(hello, then events). No login, no sessions, no checks: those are the product's extra work.
Its two tables are created by ``live_chat.py`` in the bench database (``create_raw_tables``).
"""

from __future__ import annotations

import asyncio
import json
import os

import psycopg
import redis.asyncio as aioredis

DATABASE_URL = os.environ.get("RAW_LOOP_DATABASE_URL", "")
REDIS_URL = os.environ.get("RAW_LOOP_REDIS_URL", "")
CHANNEL = os.environ.get("RAW_LOOP_CHANNEL", "smartchat-bench-raw-loop")
POOL_SIZE = int(os.environ.get("RAW_LOOP_POOL_SIZE", "8"))

TABLES = """
CREATE TABLE IF NOT EXISTS bench_raw_conversation (
    id bigserial PRIMARY KEY,
    visitor text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_message_at timestamptz,
    message_count integer NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS bench_raw_message (
    id bigserial PRIMARY KEY,
    conversation_id bigint NOT NULL REFERENCES bench_raw_conversation (id),
    client_id text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, client_id)
);
"""

_agents: set = set()
_pool: asyncio.Queue | None = None
_redis: aioredis.Redis | None = None
_ready: asyncio.Lock | None = None
_tasks: set = set()


async def _setup() -> None:
    global _pool, _redis, _ready
    if _ready is None:
        _ready = asyncio.Lock()
    async with _ready:
        if _pool is not None:
            return
        pool: asyncio.Queue = asyncio.Queue()
        for _ in range(POOL_SIZE):
            pool.put_nowait(await psycopg.AsyncConnection.connect(DATABASE_URL))
        _redis = aioredis.Redis.from_url(REDIS_URL)
        pubsub = _redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        task = asyncio.get_running_loop().create_task(_relay(pubsub))
        _tasks.add(task)
        _pool = pool


async def _relay(pubsub) -> None:
    """The one subscriber: every published event goes to every open agent socket."""
    async for item in pubsub.listen():
        if item["type"] != "message":
            continue
        frame = {"type": "websocket.send", "text": item["data"].decode()}
        for send in list(_agents):
            try:
                await send(frame)
            except Exception:  # a socket closing meanwhile
                _agents.discard(send)


async def _store(conversation: int | None, visitor: str, client_id: str, body: str) -> tuple[int, int, str]:
    """One transaction: the message inserted, its conversation updated (inserted if new)."""
    assert _pool is not None
    conn = await _pool.get()
    try:
        async with conn.transaction():
            if conversation is None:
                cur = await conn.execute(
                    "INSERT INTO bench_raw_conversation (visitor) VALUES (%s) RETURNING id", [visitor]
                )
                conversation = (await cur.fetchone())[0]
            cur = await conn.execute(
                "INSERT INTO bench_raw_message (conversation_id, client_id, body) VALUES (%s, %s, %s) "
                "RETURNING id, created_at",
                [conversation, client_id, body],
            )
            message_id, created = await cur.fetchone()
            await conn.execute(
                "UPDATE bench_raw_conversation SET last_message_at = %s, message_count = message_count + 1 "
                "WHERE id = %s",
                [created, conversation],
            )
        return conversation, message_id, created.isoformat()
    finally:
        _pool.put_nowait(conn)


async def _visitor(receive, send, visitor: str) -> None:
    conversation = None
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        data = json.loads(message.get("text") or "{}")
        kind = data.get("type")
        if kind == "auth":
            await send({"type": "websocket.send", "text": json.dumps({"type": "hello"})})
        elif kind == "message":
            body, client_id = data["body"], data["client_id"]
            conversation, message_id, created = await _store(conversation, visitor, client_id, body)
            shown = {"id": message_id, "from": "visitor", "body": body, "created_at": created}
            event = {
                "type": "event",
                "event": {
                    "id": message_id,
                    "type": "message.created",
                    "conversation_id": conversation,
                    "payload": {"message": {**shown, "direction": "in"}},
                },
            }
            assert _redis is not None
            await _redis.publish(CHANNEL, json.dumps(event))
            ack = {"type": "ack", "client_id": client_id, "message": shown}
            await send({"type": "websocket.send", "text": json.dumps(ack)})


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    await _setup()
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    path = scope["path"]
    if path.startswith("/ws/inbox/"):
        await send({"type": "websocket.send", "text": json.dumps({"type": "hello", "ping_seconds": 25})})
        _agents.add(send)
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass  # pings and resumes: nothing to do
        finally:
            _agents.discard(send)
    else:
        client = scope.get("client") or ("", 0)
        await _visitor(receive, send, f"{client[0]}:{client[1]}")
