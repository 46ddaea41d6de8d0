"""Rate limits: the widget's sessions, conversations and messages, and the API.

Each limit answers 429 (or a socket error frame) with Retry-After past its threshold and
not before; counts are shared by server processes through Redis; a refused message stores
nothing; a real visitor and a fast agent never meet the defaults. Thresholds are made small
through settings, so the tests stay fast. Counts live in Redis when REDIS_URL is set (as in
CI), in memory otherwise; conftest forgets them before every test.
"""

from __future__ import annotations

import asyncio
import email.message
import json
import logging
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test import Client

from helpdesk.accounts import actions as admin_actions
from helpdesk.conversations import actions
from helpdesk.conversations.models import Contact, Conversation, Message
from integrations.widget.visitors import issue_token
from smartchat import env
from tests.conftest import ACME_ORIGIN
from tests.live import ServerProcess
from tests.test_live_server import TIMEOUT, next_of, open_visitor

ROOT = Path(__file__).resolve().parent.parent


def session_post(client, channel, body=None, address="127.0.0.1"):
    return client.post(
        f"/widget/v1/{channel.public_key}/session",
        json.dumps(body or {}),
        content_type="application/json",
        headers={"origin": ACME_ORIGIN},
        REMOTE_ADDR=address,
    )


def assert_rate_limited(response, *, window: int) -> None:
    assert response.status_code == 429
    assert response.json() == {"error": {"code": "rate_limited", "message": response.json()["error"]["message"]}}
    assert response.json()["error"]["message"]
    assert 1 <= int(response["Retry-After"]) <= window


# --- Widget sessions over HTTP ------------------------------------------------------------------------------


def test_new_widget_sessions_are_limited_per_address(client, cast, settings):
    settings.RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS = "3/minute"
    for _ in range(3):
        assert session_post(client, cast.widget).status_code == 200
    refused = session_post(client, cast.widget)
    assert_rate_limited(refused, window=60)
    # The widget on the customer's page can read the refusal and its Retry-After.
    assert refused["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert "Retry-After" in refused["Access-Control-Expose-Headers"]
    # Another address is not held back by this one.
    assert session_post(client, cast.widget, address="203.0.113.7").status_code == 200


def test_an_ipv6_client_counts_as_its_whole_64(client, cast, settings):
    settings.RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS = "2/minute"
    assert session_post(client, cast.widget, address="2001:db8:0:1::a").status_code == 200
    assert session_post(client, cast.widget, address="2001:db8:0:1::b").status_code == 200
    assert session_post(client, cast.widget, address="2001:db8:0:1:ffff::c").status_code == 429
    assert session_post(client, cast.widget, address="2001:db8:0:2::a").status_code == 200


def test_resuming_a_session_has_its_own_limit_per_visitor(client, cast, settings):
    settings.RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS = "1/minute"
    settings.RATE_LIMIT_WIDGET_RESUMES_PER_VISITOR = "3/minute"
    token = session_post(client, cast.widget).json()["token"]
    assert session_post(client, cast.widget).status_code == 429  # no second new visitor
    for _ in range(3):  # but the known one reloads the page freely
        assert session_post(client, cast.widget, {"token": token}).status_code == 200
    assert_rate_limited(session_post(client, cast.widget, {"token": token}), window=60)
    other, _ = issue_token(cast.widget, "visitor-1")
    assert session_post(client, cast.widget, {"token": other}).status_code == 200


def test_resumed_sessions_are_limited_per_address(client, cast, settings):
    settings.RATE_LIMIT_WIDGET_RESUMES_PER_ADDRESS = "2/minute"
    tokens = [issue_token(cast.widget, f"visitor-{n}")[0] for n in range(3)]
    assert session_post(client, cast.widget, {"token": tokens[0]}).status_code == 200
    assert session_post(client, cast.widget, {"token": tokens[1]}).status_code == 200
    assert_rate_limited(session_post(client, cast.widget, {"token": tokens[2]}), window=60)


def test_a_limit_set_to_off_never_refuses(client, cast, settings):
    settings.RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS = "off"
    for _ in range(30):
        assert session_post(client, cast.widget).status_code == 200


# --- The API -----------------------------------------------------------------------------------------------


def test_the_api_is_limited_per_token(client, cast, settings):
    settings.RATE_LIMIT_API_PER_TOKEN = "3/minute"
    _, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    _, other_key = admin_actions.create_api_token(by=cast.bob, name="Reports")
    headers = {"authorization": f"Bearer {key}"}
    for _ in range(3):
        assert client.get("/api/v1/conversations/", headers=headers).status_code == 200
    assert_rate_limited(client.get("/api/v1/conversations/", headers=headers), window=60)
    assert client.post("/api/v1/presence", {}, headers=headers).status_code == 429  # any endpoint, any method
    # Another key of the same employee has its own count.
    assert client.get("/api/v1/conversations/", headers={"authorization": f"Bearer {other_key}"}).status_code == 200


def test_the_api_is_limited_per_signed_in_user(client, cast, settings):
    settings.RATE_LIMIT_API_PER_USER = "3/minute"
    client.force_login(cast.bob.user)
    for _ in range(3):
        assert client.get("/api/v1/conversations/counts").status_code == 200
    assert_rate_limited(client.get("/api/v1/conversations/counts"), window=60)
    other = Client()
    other.force_login(cast.alice.user)
    assert other.get("/api/v1/conversations/counts").status_code == 200


def test_the_schema_documents_the_429_of_every_operation(client, cast):
    client.force_login(cast.alice.user)
    schema = client.get("/api/schema/?format=json").json()
    operations = [op for path in schema["paths"].values() for op in path.values() if "responses" in op]
    assert operations
    assert all("429" in op["responses"] for op in operations)


def test_a_fast_agent_never_meets_the_default_api_limit(client, cast):
    """Page loads, polling, typing in the composer and bulk actions, much faster than a person works."""
    client.force_login(cast.bob.user)
    conversation = f"/api/v1/conversations/{cast.conversation.pk}"
    statuses = []
    for n in range(60):
        statuses.append(client.get("/api/v1/conversations/").status_code)
        statuses.append(client.get("/api/v1/conversations/counts?status=open").status_code)
        statuses.append(client.get(f"{conversation}/messages/").status_code)
        statuses.append(client.post(f"{conversation}/read", {}, content_type="application/json").status_code)
        if n % 6 == 0:
            reply = client.post(f"{conversation}/reply", {"body": f"Reply {n}"}, content_type="application/json")
            statuses.append(reply.status_code)
            bulk = client.post(
                "/api/v1/conversations/bulk",
                {"ids": [cast.conversation.pk], "action": "priority", "priority": n % 3},
                content_type="application/json",
            )
            statuses.append(bulk.status_code)
    assert len(statuses) == 260
    assert 429 not in statuses
    assert set(statuses) <= {200, 201, 204}


# --- The widget socket, over real sockets ------------------------------------------------------------------


async def send_message(ws, body: str, client_id: str) -> dict:
    """The server's answer to one message: its ack, or an error frame."""
    await ws.send(json.dumps({"type": "message", "body": body, "client_id": client_id}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if frame["type"] in ("ack", "error") and frame.get("client_id") == client_id:
            return frame


def cid(n: int) -> str:
    return f"client-{n:08d}"


def stored_count() -> int:
    return Message.objects.count()


def test_messages_are_limited_per_visitor_and_a_refused_one_stores_nothing(asgi_server, tcast, settings, caplog):
    settings.RATE_LIMIT_WIDGET_MESSAGES_PER_VISITOR = "3/2 seconds"
    token, _ = issue_token(tcast.widget, "visitor-1")
    other, _ = issue_token(tcast.widget, "visitor-2")

    async def scenario():
        async with await open_visitor(asgi_server, tcast.widget, token) as ws:
            for n in range(3):
                assert (await send_message(ws, f"Question {n}", cid(n)))["type"] == "ack"
            before = await database_sync_to_async(stored_count)()
            caplog.clear()
            refused = await send_message(ws, "Question 3", cid(3))
            assert refused["code"] == "rate_limited" and refused["message"]
            assert set(refused) == {"type", "code", "message", "retry_after", "client_id"}
            assert 1 <= refused["retry_after"] <= 2
            assert await database_sync_to_async(stored_count)() == before
            assert [r.name for r in caplog.records if r.levelno >= logging.INFO] == ["integrations.widget.limits"]
            # The socket stays open and answers, and another visitor is not held back.
            await ws.send(json.dumps({"type": "ping"}))
            assert (await next_of(ws, "pong"))["type"] == "pong"
            async with await open_visitor(asgi_server, tcast.widget, other) as ws2:
                assert (await send_message(ws2, "Me too", cid(50)))["type"] == "ack"
            # After Retry-After the visitor's retry (same client_id) goes through.
            await asyncio.sleep(refused["retry_after"])
            assert (await send_message(ws, "Question 3", cid(3)))["type"] == "ack"

    asyncio.run(scenario())
    assert Message.objects.filter(body="Question 3").count() == 1


def test_messages_are_limited_per_address(asgi_server, tcast, settings):
    settings.RATE_LIMIT_WIDGET_MESSAGES_PER_ADDRESS = "4/minute"
    tokens = [issue_token(tcast.widget, f"visitor-{n}")[0] for n in (1, 2)]

    async def scenario():
        async with (
            await open_visitor(asgi_server, tcast.widget, tokens[0]) as first,
            await open_visitor(asgi_server, tcast.widget, tokens[1]) as second,
        ):
            for n in range(2):
                assert (await send_message(first, "From the office", cid(n)))["type"] == "ack"
                assert (await send_message(second, "From the office too", cid(10 + n)))["type"] == "ack"
            refused = await send_message(second, "One more", cid(20))
            assert refused["code"] == "rate_limited" and 1 <= refused["retry_after"] <= 60

    asyncio.run(scenario())
    assert not Message.objects.filter(body="One more").exists()


def test_new_conversations_are_limited_per_address_counting_only_real_ones(asgi_server, tcast, settings):
    settings.RATE_LIMIT_WIDGET_CONVERSATIONS_PER_ADDRESS = "2/minute"
    tokens = [issue_token(tcast.widget, f"new-visitor-{n}")[0] for n in range(3)]
    conversations = Conversation.objects.count()

    async def scenario():
        async with await open_visitor(asgi_server, tcast.widget, tokens[0]) as ws:
            for n in range(3):  # one conversation, however many messages
                assert (await send_message(ws, f"Hello {n}", cid(n)))["type"] == "ack"
        async with await open_visitor(asgi_server, tcast.widget, tokens[1]) as ws:
            assert (await send_message(ws, "Hello from two", cid(10)))["type"] == "ack"
        async with await open_visitor(asgi_server, tcast.widget, tokens[2]) as ws:
            refused = await send_message(ws, "Hello from three", cid(20))
            assert refused["code"] == "rate_limited" and 1 <= refused["retry_after"] <= 60

    asyncio.run(scenario())
    assert Conversation.objects.count() == conversations + 2
    # Nothing of the refused visitor was stored: no message, no contact.
    assert not Message.objects.filter(body="Hello from three").exists()
    assert not Contact.objects.filter(identities__external_id="new-visitor-2").exists()


def test_new_conversations_are_limited_per_visitor(asgi_server, tcast, settings):
    settings.RATE_LIMIT_WIDGET_CONVERSATIONS_PER_VISITOR = "1/hour"
    token, _ = issue_token(tcast.widget, "new-visitor")

    async def scenario():
        async with await open_visitor(asgi_server, tcast.widget, token) as ws:
            ack = await send_message(ws, "First chat", cid(1))
            assert ack["type"] == "ack"
            # The team deletes the conversation: the visitor's next message would open another.
            message = await database_sync_to_async(Message.objects.select_related("conversation").get)(
                pk=ack["message_id"]
            )
            await database_sync_to_async(actions.delete_conversation)(message.conversation, by=tcast.alice)
            refused = await send_message(ws, "Second chat", cid(2))
            assert refused["code"] == "rate_limited" and refused["retry_after"] > 60

    asyncio.run(scenario())
    assert not Message.objects.filter(body="Second chat").exists()


def test_a_real_visitor_never_meets_the_defaults(asgi_server, tcast):
    """A new visitor reloads the page a dozen times and types fifteen quick messages."""

    def reload_page(token: str | None) -> str:
        request = urllib.request.Request(
            f"{asgi_server.url}/widget/v1/{tcast.widget.public_key}/session",
            data=json.dumps({"token": token} if token else {}).encode(),
            method="POST",
            headers={"Origin": ACME_ORIGIN, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            return json.loads(response.read())["token"]

    token = reload_page(None)
    for _ in range(12):
        token = reload_page(token)

    async def scenario():
        async with await open_visitor(asgi_server, tcast.widget, token) as ws:
            answers = [await send_message(ws, f"Line {n} of my question", cid(n)) for n in range(15)]
        assert [a["type"] for a in answers] == ["ack"] * 15

    asyncio.run(scenario())


# --- Shared across processes, in memory on the embedded default ---------------------------------------------


def post_session(url: str, channel) -> tuple[int, email.message.Message]:
    request = urllib.request.Request(
        f"{url}/widget/v1/{channel.public_key}/session",
        data=b"{}",
        method="POST",
        headers={"Origin": ACME_ORIGIN, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers


@pytest.mark.redis
@pytest.mark.postgres
def test_two_server_processes_share_the_counts_through_redis(asgi_server, redis_layer, tcast, settings):
    if connection.vendor != "postgresql":
        pytest.skip("a second server process needs a shared database server")
    settings.RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS = "3/minute"
    second = ServerProcess(env={"RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS": "3/minute"}).start()
    try:
        assert post_session(asgi_server.url, tcast.widget)[0] == 200
        assert post_session(second.url, tcast.widget)[0] == 200
        assert post_session(asgi_server.url, tcast.widget)[0] == 200
        status, headers = post_session(second.url, tcast.widget)
        assert status == 429 and 1 <= int(headers["Retry-After"]) <= 60
        assert post_session(asgi_server.url, tcast.widget)[0] == 429
    finally:
        second.stop()


def storage_class(tmp_path, **environ: str) -> str:
    """The rate-limit storage a freshly started Smartchat process would use, given its environment."""
    code = (
        "import django; django.setup(); from helpdesk import ratelimits; "
        "print(type(ratelimits.limiter().storage).__name__)"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    environment = {**base, "DJANGO_SETTINGS_MODULE": "smartchat.settings", "SMARTCHAT_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**environment, **environ},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


FIRST_HITS_AT_ONCE = """
import threading, django
django.setup()
from helpdesk import ratelimits
barrier, errors, limiters = threading.Barrier(25), [], set()
def visitor(n):
    barrier.wait()
    try:
        ratelimits.hit((ratelimits.WIDGET_SESSIONS_PER_ADDRESS, f"198.51.100.{n}"))
        limiters.add(id(ratelimits.limiter()))
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=visitor, args=(n,)) for n in range(25)]
for thread in threads: thread.start()
for thread in threads: thread.join()
print(len(limiters), errors)
"""


def test_a_cold_processs_first_hits_at_once_are_counted_not_refused_with_an_error(tmp_path):
    # The first requests of a freshly started server, all at once (a page of visitors
    # reconnecting): each counts against its limit. The rate-limit library imports its Redis
    # client at the first use and read a half-imported module's version from another thread:
    # ConfigurationError, a 500 to anonymous visitors (seen in 4 of 6 fresh processes).
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    environment = {
        **base,
        "DJANGO_SETTINGS_MODULE": "smartchat.settings",
        "SMARTCHAT_DATA_DIR": str(tmp_path),
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        "CHANNEL_LAYER_PREFIX": f"test-cold-{os.getpid()}",
    }
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-c", FIRST_HITS_AT_ONCE],
            env=environment,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert result.stdout.strip() == "1 []", result.stdout + result.stderr


def test_the_embedded_default_counts_in_memory_and_redis_url_in_redis(tmp_path):
    assert storage_class(tmp_path) == "MemoryStorage"
    assert storage_class(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0") == "RedisStorage"


@pytest.mark.parametrize("raw", ["lots", "30", "0/minute", "30/minute,", "30/fortnight"])
def test_a_bad_rate_in_the_environment_fails_loudly(monkeypatch, raw):
    monkeypatch.setenv("RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS", raw)
    with pytest.raises(env.ConfigError, match="RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS"):
        env.rate_limit("RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS", "20/minute")


@pytest.mark.parametrize("raw", ["off", "OFF", "5/second; 100/hour", "10 per minute", "3/2 seconds"])
def test_good_rates_are_read(monkeypatch, raw):
    monkeypatch.setenv("RATE_LIMIT_API_PER_USER", raw)
    assert env.rate_limit("RATE_LIMIT_API_PER_USER", "600/minute") == ("off" if raw.lower() == "off" else raw)


def test_every_limit_has_a_valid_default_setting():
    from django.conf import settings

    from helpdesk import ratelimits

    for limit in ratelimits.LIMITS:
        assert ratelimits._items(getattr(settings, limit.setting)), limit.setting
