"""The relay: each web process reads the event log and hands events to its own sockets.

- Ids that commit out of order (two writers on real PostgreSQL connections, the later id
  committing first): the log's reader returns each exactly once, the earlier id after it has
  committed, never skipped; an inbox socket receives both.
- Redis stopped (a private redis-server, never the shared one): a server process's sockets
  still receive every event; typing comes back once Redis does.
- The embedded default (SQLite, the in-memory layer): an event written by another process
  (as the Celery worker writes a snooze wake or an automatic away) reaches the socket of a
  web server running two worker processes, with no ping to fetch it.
- A read stuck on the database (the log's table locked by another connection): the last
  socket's leaving stops the relay within its bound (``STOP_WAIT_SECONDS``), not when the
  database answers.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlencode

import pytest
import websockets
from channels.db import database_sync_to_async
from django.db import close_old_connections, connection, transaction

from helpdesk.conversations import actions
from helpdesk.events.log import record
from helpdesk.events.tail import Tail
from smartchat import webserver
from tests.helpers import HeldTransaction, last_event_id
from tests.live import ServerProcess, Session, free_port
from tests.test_live_server import next_of, open_inbox
from tests.test_sockets import connected_inbox, events_received

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent
DEADLINE = 5  # seconds an event may take to reach a socket (the fault goal: never deaf > 5 s)


def needs_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers and a second process need a database server")


class HeldWriter(HeldTransaction):
    """Writes one event in a transaction of its own connection, and commits only when told."""

    def __init__(self, conversation, label: str) -> None:
        super().__init__(lambda: record(conversation, "relay.test", label=label), label)

    @property
    def event_id(self) -> int:
        return self.result.pk


def out_of_order(conversation) -> tuple[HeldWriter, HeldWriter]:
    """Two writers in flight: the first holds the smaller id. Neither has committed yet."""
    first = HeldWriter(conversation, "first").hold()
    second = HeldWriter(conversation, "second").hold()
    assert first.event_id < second.event_id
    return first, second


def test_ids_committing_out_of_order_are_each_read_once(tcast):
    needs_postgres()
    tail = Tail()
    tail.start()
    first, second = out_of_order(tcast.conversation)
    assert tail.read() == []  # neither has committed
    second.finish()  # the larger id commits first
    assert [e["id"] for e in tail.read()] == [second.event_id]
    assert tail.read() == []
    first.finish()  # now the smaller one: a reader keeping "the highest id seen" would skip it
    assert [e["id"] for e in tail.read()] == [first.event_id]
    assert tail.read() == []
    tail.close()


async def test_a_socket_gets_both_of_two_writers_out_of_order_exactly_once(tcast):
    needs_postgres()
    alice = await connected_inbox(tcast.alice)
    first, second = await asyncio.to_thread(out_of_order, tcast.conversation)
    await asyncio.to_thread(second.finish)
    later = await events_received(alice)
    await asyncio.to_thread(first.finish)
    earlier = await events_received(alice)
    assert [e["id"] for e in later] == [second.event_id]
    assert [e["id"] for e in earlier] == [first.event_id]
    assert await alice.receive_nothing(timeout=2.5)  # the relay's backstop poll repeats nothing
    await alice.disconnect()


async def test_the_relay_stops_with_its_last_socket_and_starts_again(tcast):
    from helpdesk.realtime import relay

    alice = await connected_inbox(tcast.alice)
    running = relay.current()
    assert running is not None and running.members
    await alice.disconnect()
    assert relay.current() is None and running.stopped
    alice = await connected_inbox(tcast.alice)
    await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.bob, body="again")
    assert [e["type"] for e in await events_received(alice)] == ["message.created"]
    await alice.disconnect()


class TableLock(threading.Thread):
    """Holds the event log's table locked (ACCESS EXCLUSIVE) on a connection of its own until told."""

    def __init__(self) -> None:
        super().__init__(name="event-log-lock", daemon=True)
        self.locked, self.release, self.done = threading.Event(), threading.Event(), threading.Event()

    def run(self) -> None:
        from helpdesk.events.models import Event

        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {Event._meta.db_table} IN ACCESS EXCLUSIVE MODE")
                self.locked.set()
                self.release.wait(30)
        finally:
            connection.close()
            self.done.set()


class Listener:
    """A local socket as the relay sees it: it only takes messages."""

    def __init__(self) -> None:
        self.messages: list[dict] = []

    def relay_message(self, message: dict) -> None:
        self.messages.append(message)


def _waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


async def test_stopping_does_not_wait_on_a_read_stuck_on_the_database(tcast, monkeypatch, caplog):
    # A read the database holds (here a lock on the log's table; in production a database
    # that stopped answering) runs on the relay's thread, which nothing can interrupt. The last
    # socket's close, and the loop's end, must not wait on it: each wait of stop() is bounded.
    needs_postgres()
    from helpdesk.realtime import relay as relays

    monkeypatch.setattr(relays, "STOP_WAIT_SECONDS", 0.5)
    listener = Listener()
    relay = await relays.join(listener, ["test.group"])
    lock = TableLock()
    lock.start()
    try:
        assert await asyncio.to_thread(lock.locked.wait, 20)
        relay.wake.set()  # the relay reads now, and its read waits for the lock
        for _ in range(100):
            if await database_sync_to_async(_waiting_on_a_lock)():
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the relay's read never waited on the lock")
        started = time.monotonic()
        await asyncio.wait_for(relays.leave(listener, relay), timeout=10)
        took = time.monotonic() - started
        # The reader's close queues behind the stuck read: stop() gives up after its bound.
        assert took < 3, f"stopping took {took:.1f} s"
        assert relay.stopped and relays.current() is None
        assert "did not close within 0.5 s" in caplog.text
    finally:
        lock.release.set()
        await asyncio.to_thread(lock.done.wait, 20)
    # Once the database answers, the thread finishes its read and closes its connection.
    for _ in range(100):
        if not any(t.name.startswith("relay") and t.is_alive() for t in threading.enumerate()):
            break
        await asyncio.sleep(0.05)
    assert await database_sync_to_async(_waiting_on_a_lock)() == 0


async def test_a_quiet_inbox_hears_how_far_the_log_is_and_resumes_from_there(tcast, settings):
    # Erin (Support) sees nothing of Sales. Without being told how far the log is, her page's
    # last event id stays where it was, and once a busy company has written more than the
    # catch-up window since, a short reconnect would make her page reload for nothing.
    settings.EVENT_CATCHUP_LIMIT = 12  # a position every 12 // 4 = 3 events
    settings.EVENT_CATCHUP_OVERLAP = 2  # the ids re-read before a resume point (late committers)
    before = await database_sync_to_async(last_event_id)()
    erin = await connected_inbox(tcast.erin)
    for n in range(14):
        await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.alice, body=f"sales {n}")
    newest = await database_sync_to_async(last_event_id)()
    positions = []
    while not await erin.receive_nothing(timeout=0.5):
        frame = await erin.receive_json_from()
        assert frame["type"] in ("position", "presence"), frame  # never one of Sales' events
        if frame["type"] == "position":
            positions.append(frame["event_id"])
    assert positions and positions == sorted(positions) and newest - positions[-1] < 3 + 1
    # From there the resume replays nothing and keeps the page ...
    await erin.send_json_to({"type": "resume", "after": positions[-1]})
    assert await erin.receive_json_from() == {"type": "catchup", "events": [], "reset": False}
    # ... where the id it had before the 14 replies is out of the window: a reload.
    await erin.send_json_to({"type": "resume", "after": before})
    assert (await erin.receive_json_from())["reset"] is True
    await erin.disconnect()


# --- Redis stopped -------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of the test's own on a free port: stopping it touches nobody else."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(OSError):
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


async def next_event(ws, kind: str, seconds: float = DEADLINE) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if message["type"] == "event" and message["event"]["type"] == kind:
            return message["event"]


def test_with_redis_stopped_the_relay_still_delivers_every_event(tcast):
    needs_postgres()
    redis = PrivateRedis().start()
    server = ServerProcess(env={"REDIS_URL": redis.url, "CELERY_BROKER_URL": os.environ.get("REDIS_URL", "")})
    server.start()
    try:
        alice, bob = Session.of(server, tcast.alice), Session.of(server, tcast.bob)

        async def scenario():
            async with await open_inbox(server, alice) as inbox, await open_inbox(server, bob) as other:
                redis.stop()
                # Written by another process (this one) while Redis is down: each arrives, in order.
                bodies = [f"while Redis is down {n}" for n in range(3)]
                for body in bodies:
                    await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.bob, body=body)
                heard = [(await next_event(inbox, "message.created"))["payload"]["message"]["body"] for _ in bodies]
                assert heard == bodies
                # Redis back (an empty one: every group forgotten); a ping joins them again,
                # and typing, which only the channel layer carries, reaches the other tab.
                redis.start()
                for ws in (inbox, other):
                    await ws.send(json.dumps({"type": "ping"}))
                    await next_of(ws, "pong")
                typing_frame = {"type": "typing", "conversation_id": tcast.conversation.pk, "mode": "reply"}
                deadline = time.monotonic() + DEADLINE
                typing = None
                while typing is None and time.monotonic() < deadline:  # a notice may meet a stale connection
                    await other.send(json.dumps({**typing_frame, "typing": True}))
                    with suppress(TimeoutError):
                        typing = await asyncio.wait_for(next_of(inbox, "typing"), 1.2)
                assert typing is not None, "typing never came back after Redis did"
                assert typing["conversation_id"] == tcast.conversation.pk

        asyncio.run(scenario())
    finally:
        server.stop()
        redis.stop()


# --- The embedded default: worker and web are separate processes ------------------------------


def _embedded_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(SMARTCHAT_DATA_DIR=str(data), SECRET_KEY="x-relay-embedded-key-abcdefghijklmnopqrstuvwxyz0123")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def _sign_in(url: str, email: str, password: str) -> str:
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{url}/login/", timeout=10).read().decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urlencode({"csrfmiddlewaretoken": csrf, "username": email, "password": password}).encode()
    opener.open(urllib.request.Request(f"{url}/login/", data=form, headers={"Referer": f"{url}/login/"}), timeout=10)
    return "; ".join(f"{c.name}={c.value}" for c in jar)


# What the Celery worker does when a Telegram poll brings a customer's message.
WORKER_WRITES = """
from helpdesk.conversations import actions
from helpdesk.conversations.models import Channel
channel = Channel.objects.order_by("pk").first()
message = actions.receive_message(channel=channel, external_contact_id="v-1", body="written by another process")
print("WROTE", message.conversation_id)
"""


@pytest.mark.timeout(300)
def test_on_the_embedded_default_another_processs_event_reaches_the_socket(tmp_path):
    env = _embedded_env(tmp_path / "data")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--noinput"], ["seed_demo", "--base-url", url]):
        subprocess.run([*manage, *command], cwd=ROOT, env=env, check=True, capture_output=True, timeout=240)
    server = ["uvicorn", "smartchat.asgi:application", "--port", str(port), "--workers", "2", "--lifespan", "off"]
    web = subprocess.Popen(
        [sys.executable, "-m", *server, "--no-proxy-headers", "--log-level", "warning", *webserver.ws_args(env)],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline and web.poll() is None, "the web did not start"
                time.sleep(0.2)
        cookie = _sign_in(url, "admin@demo.smartchat", "smartchat-demo")

        async def scenario():
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/ws/inbox/", origin=url, additional_headers={"Cookie": cookie}
            ) as inbox:
                await next_of(inbox, "hello")
                wrote = await asyncio.to_thread(
                    subprocess.run,
                    [*manage, "shell", "-c", WORKER_WRITES],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                conversation_id = int(wrote.stdout.split("WROTE")[1])
                # No ping is sent: only the relay's poll of the log can bring it.
                event = await next_event(inbox, "message.created")
                assert event["conversation_id"] == conversation_id
                assert event["payload"]["message"]["body"] == "written by another process"

        asyncio.run(scenario())
    finally:
        web.terminate()
        web.wait(15)


# Keep the thread-bound connections of the writers from outliving the test database.
@pytest.fixture(autouse=True)
def _closed_connections():
    yield
    close_old_connections()
