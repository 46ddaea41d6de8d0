"""What users run, booted the way they boot it.

The tracked tree is copied to a temporary directory and the README's run command, ``./scripts/start``,
runs there: it creates a fresh ``.venv`` from ``requirements.txt`` alone (the lock, in pip's
hash-checking mode), migrates, seeds the demo company and starts the Procfile's web, worker and beat
under honcho. Once on PostgreSQL + Redis (a database and a Redis db of its own), once on the embedded
default (SQLite, the in-memory layer and the filesystem broker, in a temporary data dir). Each time:
the web answers, a demo agent signs in through the real form and opens the inbox socket, a visitor
writes through the widget and the agent's socket receives it, and a conversation snoozed for three
seconds wakes on the agent's socket, which only beat (it sends the wake task every 30 s) and the
worker (it runs it, through the broker) can cause; the worker also applies the chat's events to the
statistics (beat's apply-statistics, its log says how many). Then Ctrl-C's signal stops every process.

A dependency the runtime needs but only the test requirements install (``packaging``, issue 8) shows
here as the worker dying at start. The first run installs the virtualenv (about a minute with pip's
cache), so the test runs with CI=true, or when asked: SMARTCHAT_BOOT_TEST=1 python -m pytest -m boot
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import psutil
import psycopg
import pytest
import redis
import websockets
from django.conf import settings
from psycopg import sql

from tests.live import free_port

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI") == "true"
AGENT, PASSWORD = "bob@demo.smartchat", "smartchat-demo"  # seed_demo's agent, as the README lists it
INSTALL_AND_START_SECONDS = 420  # a fresh virtualenv: about a minute with pip's cache, longer without
WAKE_SECONDS = 75  # beat sends the wake task every 30 s; the first one 30 s after it starts
HONCHO_INTERRUPTED = 130  # honcho's exit code after SIGINT, when every process stopped with it

pytestmark = [
    pytest.mark.boot,
    pytest.mark.timeout(900),
    pytest.mark.skipif(
        not IN_CI and os.environ.get("SMARTCHAT_BOOT_TEST") != "1",
        reason="boots ./scripts/start in a fresh virtualenv (a minute or two); runs with CI=true, "
        "or: SMARTCHAT_BOOT_TEST=1 python -m pytest -m boot",
    ),
]


def need(what: str) -> None:
    """Skip without the services a run needs; in CI they must be there, so fail instead."""
    if IN_CI:
        pytest.fail(f"CI must provide {what} for the boot test")
    pytest.skip(f"needs {what}")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """The working-tree files git tracks (and new ones it would add), copied: what a clone holds, uncommitted
    edits included, and nothing git ignores (no .venv, no .data)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"the boot test copies the files git tracks, and git could not list them: {exc}")
    destination = tmp_path_factory.mktemp("boot") / "smartchat"
    for name in filter(None, listed.split(b"\0")):
        source = ROOT / os.fsdecode(name)
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in the index
        target = destination / os.fsdecode(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    return destination


def user_environment() -> dict[str, str]:
    """This process's environment without what the test run set for itself: no settings, no virtualenv."""
    read_by_settings = set()
    for module in (ROOT / "smartchat").rglob("*.py"):  # the settings package too
        read_by_settings |= set(re.findall(r"env\.\w+\(\s*\"([A-Z][A-Z0-9_]*)\"", module.read_text()))
    dropped = read_by_settings | {"DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith(("SMARTCHAT_", "PYTEST_"))}
    # scripts/test puts its .venv/bin first; the fresh .venv must be made by the system's python3.
    paths = env.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in paths if p and not (Path(p).parent / "pyvenv.cfg").exists())
    return env


@contextmanager
def own_redis_db(url: str) -> Iterator[str]:
    """A Redis db nobody uses (claimed atomically, emptied afterwards): the broker's queue is the db's own."""
    try:
        count = int(redis.Redis.from_url(url, socket_timeout=5).config_get("databases")["databases"])
    except redis.RedisError:
        count = 16
    for number in range(count - 1, 0, -1):
        candidate = urlsplit(url)._replace(path=f"/{number}").geturl()
        db = redis.Redis.from_url(candidate, socket_timeout=5)
        if db.dbsize() == 0 and db.set("smartchat-boot-test", str(os.getpid()), nx=True):
            try:
                yield candidate
            finally:
                db.flushdb()
                db.close()
            return
    pytest.fail(f"no empty Redis db on {url} for the boot test")


@contextmanager
def postgres_and_redis(env: dict[str, str], data: Path) -> Iterator[None]:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql" or not settings.REDIS_URL:
        need("PostgreSQL and Redis (DATABASE_URL and REDIS_URL)")
    name = f"smartchat_boot_{secrets.token_hex(4)}"
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    server = {"host": host, "port": port, "user": db["USER"] or None, "password": db["PASSWORD"] or None}
    with psycopg.connect(**server, dbname="postgres", autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            with own_redis_db(settings.REDIS_URL) as redis_url:
                password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
                env.update(
                    DATABASE_URL=f"postgres://{quote(db['USER'] or '', safe='')}{password}@{host}:{port}/{name}",
                    REDIS_URL=redis_url,
                    CHANNEL_LAYER_PREFIX=f"smartchat-boot-{secrets.token_hex(4)}",
                    # Production start-up refuses the public development key.
                    SECRET_KEY=secrets.token_urlsafe(50),
                )
                yield
        finally:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def embedded_default(env: dict[str, str], data: Path) -> Iterator[None]:
    env["SMARTCHAT_DATA_DIR"] = str(data)  # nothing else: SQLite, the in-memory layer, the filesystem broker
    yield


class Start:
    """./scripts/start in the copied tree, its output (honcho's, every process's) in a file."""

    def __init__(self, root: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                ["./scripts/start"],
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, seconds: float, what: str, *, since: int = 0) -> re.Match:
        """The first match in the output (from character ``since`` on) within ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            found = re.search(pattern, self.output()[since:])
            if found:
                return found
            if self.process.poll() is not None:
                pytest.fail(f"./scripts/start exited (rc={self.process.returncode}) before {what}")
            if time.monotonic() > deadline:
                pytest.fail(f"no sign of {what} within {seconds} s")
            time.sleep(0.5)

    def stop(self) -> tuple[int | None, list[psutil.Process]]:
        """Ctrl-C's signal to honcho, which stops its processes; whatever outlives it is killed and returned."""
        try:
            processes = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            processes = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        _, survivors = psutil.wait_procs(processes, timeout=10)
        for process in survivors:
            process.kill()
        if code is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        return code, survivors


def wait_until_healthy(start: Start, url: str) -> None:
    deadline = time.monotonic() + INSTALL_AND_START_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                assert json.loads(response.read())["ok"] is True
                return
        except OSError:
            if start.process.poll() is not None:
                pytest.fail(f"./scripts/start exited (rc={start.process.returncode}) before the web answered")
            if time.monotonic() > deadline:
                pytest.fail(f"the web did not answer /healthz within {INSTALL_AND_START_SECONDS} s")
            time.sleep(1)


class Browser:
    """An agent signed in through the real login form: a cookie jar, as a browser holds it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def sign_in(self, email: str, password: str) -> None:
        page = self.opener.open(f"{self.url}/login/", timeout=10).read().decode()
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urlencode({"csrfmiddlewaretoken": csrf, "username": email, "password": password}).encode()
        request = urllib.request.Request(f"{self.url}/login/", data=form, headers={"Referer": f"{self.url}/login/"})
        with self.opener.open(request, timeout=10) as response:
            assert urlsplit(response.url).path == "/inbox/", f"signing in as {email} did not reach the inbox"

    def post_json(self, path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken")},
        )
        with self.opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())


class Inbox:
    """The agent's inbox socket, as the inbox page uses it: events pushed, and pings that also fetch
    what other processes wrote when there is no shared channel layer (the embedded default)."""

    PING_SECONDS = 2

    def __init__(self, ws) -> None:
        self.ws = ws
        self.after = 0

    async def event(self, kind: str, seconds: float) -> dict:
        deadline = time.monotonic() + seconds
        next_ping = time.monotonic() + self.PING_SECONDS
        while time.monotonic() < deadline:
            try:
                message = json.loads(await asyncio.wait_for(self.ws.recv(), max(0.1, next_ping - time.monotonic())))
            except TimeoutError:
                await self.ws.send(json.dumps({"type": "ping", "after": self.after}))
                next_ping = time.monotonic() + self.PING_SECONDS
                continue
            events = {"event": [message.get("event")], "catchup": message.get("events", [])}.get(message["type"], [])
            for event in events:
                self.after = max(self.after, event["id"])
                if event["type"] == kind:
                    return event
        pytest.fail(f"no {kind} event on the agent's socket within {seconds} s")


async def next_of(ws, kind: str) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == kind:
            return message


async def open_visitor(ws_url: str, key: str, token: str, origin: str):
    """The widget's visitor socket, through its handshake: the token in the first frame."""
    ws = await websockets.connect(f"{ws_url}/ws/widget/{key}/", origin=origin, open_timeout=10)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    await next_of(ws, "hello")
    return ws


def start_widget_session(url: str, key: str) -> str:
    request = urllib.request.Request(
        f"{url}/widget/v1/{key}/session",
        data=b"{}",
        headers={"Origin": url, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["token"]


async def chat_then_snooze_until_the_worker_wakes_it(url: str, key: str) -> None:
    ws_url = "ws" + url.removeprefix("http")
    agent = Browser(url)
    await asyncio.to_thread(agent.sign_in, AGENT, PASSWORD)
    cookie = f"sessionid={agent.cookie('sessionid')}; csrftoken={agent.cookie('csrftoken')}"
    async with websockets.connect(
        f"{ws_url}/ws/inbox/", origin=url, additional_headers={"Cookie": cookie}, open_timeout=10
    ) as ws:
        await next_of(ws, "hello")
        inbox = Inbox(ws)

        token = await asyncio.to_thread(start_widget_session, url, key)
        visitor = await open_visitor(ws_url, key, token, origin=url)
        async with visitor:
            await visitor.send(json.dumps({"type": "message", "body": "Does it boot?", "client_id": "b0" * 16}))
            ack = await next_of(visitor, "ack")
        created = await inbox.event("message.created", 10)
        assert (created["payload"]["message"]["id"], created["payload"]["message"]["body"]) == (
            ack["message_id"],
            "Does it boot?",
        )

        conversation_id = created["conversation_id"]
        until = datetime.now(UTC) + timedelta(seconds=3)
        status, _ = await asyncio.to_thread(
            agent.post_json, f"/api/v1/conversations/{conversation_id}/snooze", {"until": until.isoformat()}
        )
        assert status == 200
        assert (await inbox.event("conversation.snoozed", 10))["conversation_id"] == conversation_id
        woken = await inbox.event("conversation.woken", WAKE_SECONDS)
        assert woken["conversation_id"] == conversation_id
        assert woken["payload"]["reason"] == "time"  # the scheduler's task, run by the worker


@pytest.mark.parametrize("services", [postgres_and_redis, embedded_default], ids=["postgres-redis", "embedded"])
def test_scripts_start_boots_what_users_run(tree, tmp_path, services):
    began = time.monotonic()
    env = user_environment()
    port = free_port()
    env.update(SMARTCHAT_HOST="127.0.0.1", SMARTCHAT_PORT=str(port))
    url = f"http://127.0.0.1:{port}"
    with services(env, tmp_path / "data"):
        start = Start(tree, env, tmp_path / "start.log")
        stopped = False
        try:
            wait_until_healthy(start, url)
            key = start.wait_for(r"/demo/([^/\s]+)/", 5, "the demo company's widget key").group(1)
            start.wait_for(r"worker\.1 +\| .*\bready\.", 60, "the worker being ready")
            start.wait_for(r"beat\.1 +\| .*beat: Starting", 60, "the scheduler starting")
            before_chat = len(start.output())
            asyncio.run(chat_then_snooze_until_the_worker_wakes_it(url, key))
            # The statistics: beat's apply-statistics, run by the worker, read the chat's events
            # from the log (its return value: how many); nothing read the dashboard.
            start.wait_for(
                r"apply_statistics\[[^\]]+\] succeeded in [\d.]+s: [1-9]",
                30,
                "the worker applying the chat's events to the statistics",
                since=before_chat,
            )
            code, survivors = start.stop()
            stopped = True
            assert (code, survivors) == (HONCHO_INTERRUPTED, []), "not every process stopped with Ctrl-C"
            assert "Traceback" not in start.output()
        except BaseException:
            if not stopped:
                start.stop()
            print(f"---- ./scripts/start output ({start.log}) ----\n{start.output()}")
            raise
    print(f"booted, chatted, woke and stopped in {time.monotonic() - began:.0f} s")
