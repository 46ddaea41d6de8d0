"""Live chat benchmark: widget visitors and inbox agents over real websockets.

Starts Smartchat servers on PostgreSQL + Redis (or targets a running one), connects N widget
visitors and M inbox agents, has the visitors send at a set total rate, lets agents answer,
and reports sustained messages/s, latency (visitor send to agent receive, agent reply to
visitor receive) as p50/p95/p99/max, lost messages, sockets held, and server memory and CPU.

Usage and the meaning of every figure: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import math
import os
import random
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import psutil
from _database import recreate_database  # bench/, the script's own folder
from _fanout import idle_inbox_sockets, raw_limits
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.typing import Origin

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/smartchat_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Our own channel-layer prefix: the bench never sees (or deletes) another installation's keys.
LAYER_PREFIX = "smartchat-bench"
# The page the widget is "embedded" on; .example is reserved (RFC 2606), so it is never real.
WIDGET_ORIGIN = "https://bench.example"
VISITOR_PING_SECONDS = 25.0  # PING_MS in static/widget/smartchat-widget.js
HTTP_POOL_SIZE = 16  # keep-alive connections per agent (a few browser tabs' worth)
SETUP_CONCURRENCY = 25  # visitor sessions opened at once while connecting
AGENT_SETUP_CONCURRENCY = 8  # agents signing in at once while connecting
IDLE_REUSE_SECONDS = 3.0  # uvicorn closes idle keep-alive connections after 5 s
PROGRESS_SECONDS = 5.0
RAW_LOOP_SECONDS = 10.0  # the raw loop's window at the offered rate (at most --duration)
TOKEN_RE = re.compile(r"bench-\d+-\d+")
TARGET = {"p99_ms": 100.0, "rate": 200.0, "sockets": 1000}
# The bench is one address opening a thousand widget sessions and sending hundreds of messages
# and replies a second: far past the rate limits, on purpose. The servers it starts get limits
# no run reaches, so the limiter is still counted (its cost is measured) but never refuses.
# --server-env RATE_LIMIT_...=... puts a real one back.
BENCH_RATE_LIMITS = {
    f"RATE_LIMIT_{name}": "1000000/minute"
    for name in (
        "WIDGET_SESSIONS_PER_ADDRESS",
        "WIDGET_RESUMES_PER_VISITOR",
        "WIDGET_RESUMES_PER_ADDRESS",
        "WIDGET_CONVERSATIONS_PER_VISITOR",
        "WIDGET_CONVERSATIONS_PER_ADDRESS",
        "WIDGET_MESSAGES_PER_VISITOR",
        "WIDGET_MESSAGES_PER_ADDRESS",
        "API_PER_TOKEN",
        "API_PER_USER",
    )
}

clock = time.monotonic  # CLOCK_MONOTONIC: one clock for every send and receive in this process


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


# --- HTTP ------------------------------------------------------------------------------------------
# Replies need pooled keep-alive connections on the event loop (threads would add GIL
# contention to the timing): aiohttp, with cookies handled by hand so each agent is explicit.


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def cookies(self) -> dict[str, str]:
        found = {}
        for name, value in self.headers:
            if name == "set-cookie":
                key, _, val = value.split(";", 1)[0].partition("=")
                found[key.strip()] = val.strip()
        return found


class HttpClient:
    """Keep-alive HTTP/1.1 to one server, at most ``size`` requests in flight."""

    def __init__(self, base_url: str, size: int = HTTP_POOL_SIZE) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise SystemExit(f"bench: only http:// servers are supported, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.size = size
        self.session: aiohttp.ClientSession | None = None

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> HttpResponse:
        if self.session is None:
            # Created on first use: a session belongs to the running event loop. No cookie jar:
            # every request carries exactly the cookies its caller gives it.
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.size, keepalive_timeout=IDLE_REUSE_SECONDS),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        async with self.session.request(
            method, self.base_url + path, headers=headers or {}, data=body, allow_redirects=False
        ) as response:
            content = await response.read()
            # Every header line as sent (Set-Cookie repeats), names in lower case.
            found = [(name.lower(), value) for name, value in response.headers.items()]
            return HttpResponse(response.status, found, content)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None


# --- Servers, database, seed ----------------------------------------------------------------------


@dataclass(eq=False)
class Server:
    url: str
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    pid: int | None = None
    log_mark: int | None = None  # log size when the drain ended: later lines are from teardown

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http")

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 80

    def processes(self) -> list[psutil.Process]:
        """The server process and its children (uvicorn with --workers forks)."""
        if self.pid is None:
            return []
        try:
            process = psutil.Process(self.pid)
            return [process, *process.children(recursive=True)]
        except psutil.Error:
            return []

    def rss(self) -> int | None:
        if self.pid is None:
            return None
        total = 0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total

    def established(self) -> int | None:
        """Client connections the server holds open right now (TCP on its listening port)."""
        if self.pid is None:
            return None
        count = 0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                count += sum(
                    1
                    for conn in process.net_connections(kind="tcp")
                    if conn.status == psutil.CONN_ESTABLISHED and conn.laddr and conn.laddr.port == self.port
                )
        return count


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    # Linux: a server gets SIGTERM if the bench dies without cleaning up (even on SIGKILL).
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def server_env(args: argparse.Namespace, secret_key: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "CHANNEL_LAYER_PREFIX": LAYER_PREFIX,
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",  # DEBUG keeps every query in memory: it would skew RSS and CPU
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **BENCH_RATE_LIMITS,
    }
    for item in args.server_env:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"bench: --server-env wants KEY=VALUE, not {item!r}")
        env[key] = value
    return env


def ws_args(env: dict[str, str]) -> list[str]:
    """The websocket flags of the web process (smartchat/webserver.py): the Procfile's, from ``env``
    (``--server-env WEB_WS_DEFLATE=true`` turns compression on, for the servers and the raw limit)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from smartchat import webserver

    return webserver.ws_args(env)


def start_servers(count: int, env: dict[str, str], log_dir: Path) -> list[Server]:
    servers = []
    for number in range(1, count + 1):
        port = free_port()
        log_path = log_dir / f"server-{number}-port-{port}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                # The Procfile's command, quieter: access logs would cost CPU on the measured path.
                [
                    *(sys.executable, "-m", "uvicorn", "smartchat.asgi:application"),
                    *("--host", "127.0.0.1", "--port", str(port)),
                    *("--log-level", "warning", "--no-access-log", "--lifespan", "off", "--no-proxy-headers"),
                    *ws_args(env),
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C reaches only the bench, which closes sockets first.
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        servers.append(Server(f"http://127.0.0.1:{port}", process, log_path, process.pid))
    for server in servers:
        wait_healthy(server)
    return servers


def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = clock() + timeout
    while True:
        try:
            with opener.open(f"{server.url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if server.process is not None and server.process.poll() is not None:
            raise SystemExit(
                f"bench: server {server.url} exited with {server.process.returncode}; see {server.log_path}"
            )
        if clock() > deadline:
            raise SystemExit(f"bench: {server.url}/healthz did not answer 200 within {timeout:.0f} s")
        time.sleep(0.2)


def stop_servers(servers: list[Server]) -> None:
    for server in servers:
        if server.process and server.process.poll() is None:
            server.process.terminate()
    for server in servers:
        if server.process:
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


def find_target_pid(url: str) -> int | None:
    """The process listening on the target's port, if it runs on this machine and we may see it."""
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return None
    with contextlib.suppress(psutil.Error):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr.port == (parts.port or 80) and conn.pid:
                return conn.pid
    return None


def clear_layer(redis_url: str) -> int:
    """Delete our channel-layer keys: groups left by an earlier run would still get sends."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{LAYER_PREFIX}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()
    return len(keys)


@dataclass
class Seed:
    public_key: str
    emails: list[str]
    password: str
    company: str


def seed(args: argparse.Namespace, *, migrate: bool) -> Seed:
    """A company, a team, M agents in it and a widget channel routed to the team, via the services."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "smartchat.settings",
            "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url,
            "CHANNEL_LAYER_PREFIX": LAYER_PREFIX,
        }
    )
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))  # required with DATABASE_URL
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.core.management import call_command
    from django.db import connections

    from helpdesk.accounts import services

    if migrate:
        call_command("migrate", verbosity=0, interactive=False)
    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    company = services.create_company(name=f"Bench {stamp}")
    team = services.create_team(company=company, name="Bench team")
    password = secrets.token_urlsafe(18)
    encoded = make_password(password)  # hashed once: the hasher is slow on purpose
    emails = []
    for index in range(args.agents):
        email = f"agent{index}.{stamp}@bench.invalid"
        employee = services.create_employee(
            company=company, email=email, name=f"Bench agent {index}", role=args.agent_role, teams=[team]
        )
        employee.user.password = encoded
        employee.user.save(update_fields=["password"])
        emails.append(email)
    channel = services.create_widget_channel(
        company=company, name="Bench widget", allowed_origins=[WIDGET_ORIGIN], team=team
    )
    connections.close_all()
    return Seed(channel.public_key, emails, password, company.name)


# --- Clients ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class Visitor:
    index: int
    server: Server
    ws: ClientConnection | None = None


@dataclass(eq=False)
class Agent:
    index: int
    email: str
    server: Server
    http: HttpClient
    headers: dict[str, str] = field(default_factory=dict)
    ws: ClientConnection | None = None
    ping_seconds: float = 25.0
    hello_at: float = 0.0


@dataclass(slots=True, eq=False)
class Record:
    """One visitor message and everything that happened to it."""

    visitor: int
    owner: int  # the agent who answers it
    wants_reply: bool
    measured: bool
    t_send: float
    send_failed: bool = False
    t_ack: float | None = None
    expect_mask: int = 0  # bit i: agent i's socket was open when the message was sent
    seen_mask: int = 0  # bit i: agent i received the event
    t_agent_first: float | None = None
    t_agent_all: float | None = None
    t_reply_post: float | None = None
    t_reply_done: float | None = None
    t_reply_recv: float | None = None
    reply_failed: bool = False


def describe_close(ws: ClientConnection) -> str:
    """The close code and the server's reason (e.g. 1011 keepalive ping timeout)."""
    return f"{ws.close_code} {ws.close_reason or ''}".strip()


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99 and max in ms (nearest rank), from values in seconds."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[max(math.ceil(q * len(ordered)) - 1, 0)] * 1000, 2)

    return {"n": len(ordered), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": rank(1.0)}


class CpuSampler:
    """CPU seconds of groups of processes over an interval.

    Polled, not just read at both ends: a process that exits in between (a PostgreSQL
    backend of a closed connection) still counts up to its last poll.
    """

    def __init__(self, groups: dict[str, Callable[[], Iterable[psutil.Process]]]) -> None:
        self.groups = groups
        self.start: dict[str, dict[int, float]] = {}
        self.last: dict[str, dict[int, float]] = {}
        self.start_system: Any = None
        self.t0 = 0.0

    def poll(self) -> None:
        for name, find in self.groups.items():
            seen = self.last.setdefault(name, {})
            for process in find():
                with contextlib.suppress(psutil.Error):
                    times = process.cpu_times()
                    seen[process.pid] = times.user + times.system

    def begin(self) -> None:
        self.last = {}
        self.poll()
        self.start = {name: dict(pids) for name, pids in self.last.items()}
        self.start_system, self.t0 = psutil.cpu_times(), clock()

    def end(self) -> dict[str, float]:
        """Per group: percent of one core over the interval; "machine": percent of all cores."""
        self.poll()
        system, elapsed = psutil.cpu_times(), max(clock() - self.t0, 1e-9)
        out = {}
        for name, pids in self.last.items():
            used = sum(value - self.start[name].get(pid, 0.0) for pid, value in pids.items())
            out[name] = round(100 * used / elapsed, 1)
        busy = (sum(system) - system.idle - system.iowait) - (
            sum(self.start_system) - self.start_system.idle - self.start_system.iowait
        )
        total = sum(system) - sum(self.start_system)
        out["machine"] = round(100 * busy / total, 1) if total > 0 else 0.0
        return out


def named_processes(*prefixes: str) -> Callable[[], list[psutil.Process]]:
    def find() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["name"]):
            if (process.info["name"] or "").startswith(prefixes):
                found.append(process)
        return found

    return find


class Bench:
    """Connects the sockets, drives the load, and collects what happened to every message."""

    def __init__(self, args: argparse.Namespace, servers: list[Server], seed: Seed) -> None:
        self.args, self.servers, self.seed = args, servers, seed
        self.rng = random.Random(args.seed)
        self.records: dict[str, Record] = {}
        self.errors: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.duplicates = 0
        self.foreign = 0
        self.skipped_sends = 0
        self.stopping = False
        self.measuring = False
        self.sequence_base = 0  # the raw loop's second phase numbers its tokens past the first's
        self.window = (0.0, 0.0)
        self.loop_lag: list[float] = []
        self.send_lag: list[float] = []
        self.tasks: set[asyncio.Task] = set()
        self.chores: list[asyncio.Task] = []
        self.setup_http = {server.url: HttpClient(server.url, SETUP_CONCURRENCY) for server in servers}
        self.agents: list[Agent] = []
        self.visitors: list[Visitor] = []
        self.online: list[Agent] = []
        self.open_mask = 0  # agents whose socket is open now
        self.memory: dict[str, int | None] = {}
        self.raw: dict[str, Any] = {}
        self.idle_socket_kib: float | None = None
        # The quiet fan-out probe after the drain: one note at a time, received by every agent.
        self.probe_target: tuple[Agent, int] | None = None
        self.probe_seen: dict[str, list[float]] = {}
        self.probe: dict[str, Any] = {}
        self.cpu = CpuSampler(
            {
                "client": lambda: [psutil.Process()],
                "servers": lambda: [p for s in self.servers for p in s.processes()],
                "postgres": named_processes("postgres"),
                "redis": named_processes("redis-server"),
            }
        )

    def spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def server_rss(self) -> int | None:
        values = [server.rss() for server in self.servers]
        return None if any(v is None for v in values) else sum(v for v in values if v is not None)

    # --- Agents ----------------------------------------------------------------------------------

    async def connect_agent(self, agent: Agent) -> None:
        origin = agent.server.url
        login = await agent.http.request("GET", "/login/")
        csrftoken = login.cookies().get("csrftoken")
        if not csrftoken:
            raise RuntimeError(f"GET /login/ gave no csrftoken cookie (HTTP {login.status})")
        form = urlencode({"csrfmiddlewaretoken": csrftoken, "username": agent.email, "password": self.seed.password})
        done = await agent.http.request(
            "POST",
            "/login/",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrftoken}",
                "Origin": origin,
                "Referer": f"{origin}/login/",
            },
            body=form.encode(),
        )
        cookies = done.cookies()
        if done.status != 302 or "sessionid" not in cookies:
            raise RuntimeError(f"login as {agent.email} failed (HTTP {done.status})")
        csrftoken = cookies.get("csrftoken", csrftoken)  # login rotates it
        cookie = f"sessionid={cookies['sessionid']}; csrftoken={csrftoken}"
        # What inbox.js sends with fetch(): the session, the CSRF header, same-origin headers.
        agent.headers = {
            "Content-Type": "application/json",
            "Cookie": cookie,
            "X-CSRFToken": csrftoken,
            "Origin": origin,
            "Referer": f"{origin}/inbox/",
        }
        agent.ws = await connect(
            f"{agent.server.ws_url}/ws/inbox/",
            origin=Origin(origin),
            additional_headers={"Cookie": cookie},
            proxy=None,
            ping_interval=None,  # browsers send no protocol pings; the app pings below, like inbox.js
            open_timeout=30,
            close_timeout=2,
        )
        hello = json.loads(await asyncio.wait_for(agent.ws.recv(), 30))
        if hello.get("type") != "hello":
            raise RuntimeError(f"inbox socket said {hello!r} instead of hello")
        agent.ping_seconds = float(hello.get("ping_seconds") or 25)
        agent.hello_at = clock()
        await agent.ws.send(json.dumps({"type": "resume", "after": 0}))
        self.spawn(self.agent_reader(agent))

    async def agent_reader(self, agent: Agent) -> None:
        assert agent.ws is not None
        try:
            async for raw in agent.ws:
                now = clock()
                data = json.loads(raw)
                kind = data.get("type")
                if kind == "event":
                    self.on_agent_event(agent, data["event"], now)
                elif kind == "error":
                    self.errors[f"inbox socket error {data.get('code')}"] += 1
        except ConnectionClosed:
            pass
        finally:
            self.open_mask &= ~(1 << agent.index)
            if not self.stopping:
                self.closes[f"agent socket closed {describe_close(agent.ws)}"] += 1

    def on_agent_event(self, agent: Agent, event: dict[str, Any], now: float) -> None:
        if event.get("type") != "message.created":
            return
        message = event["payload"]["message"]
        probe = self.probe_seen.get(message.get("body") or "")
        if probe is not None:
            probe.append(now)
            return
        if message.get("direction") != "in":
            return  # replies come back to every agent too; the visitor side measures them
        match = TOKEN_RE.search(message.get("body", ""))
        record = self.records.get(match.group()) if match else None
        if record is None:
            self.foreign += 1
            return
        bit = 1 << agent.index
        if record.seen_mask & bit:
            self.duplicates += 1
            return
        record.seen_mask |= bit
        if record.t_agent_first is None:
            record.t_agent_first = now
        if record.seen_mask & record.expect_mask == record.expect_mask:
            record.t_agent_all = now
        if agent.index == record.owner and record.wants_reply and record.t_reply_post is None:
            record.t_reply_post = clock()
            self.spawn(self.reply(agent, event["conversation_id"], match.group(), record))

    async def reply(self, agent: Agent, conversation_id: int, token: str, record: Record) -> None:
        body = json.dumps({"body": f"re {token}"}).encode()
        try:
            response = await asyncio.wait_for(
                agent.http.request(
                    "POST", f"/api/v1/conversations/{conversation_id}/reply", headers=agent.headers, body=body
                ),
                self.args.timeout,
            )
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            record.reply_failed = True
            self.errors[f"reply POST {type(exc).__name__}"] += 1
            return
        record.t_reply_done = clock()
        if response.status != 201:
            record.reply_failed = True
            self.errors[f"reply POST HTTP {response.status}"] += 1
        elif self.probe_target is None:
            self.probe_target = (agent, conversation_id)

    async def agent_pinger(self, agent: Agent) -> None:
        # As inbox.js does (setInterval from the hello): every ping_seconds from this socket's
        # own hello. Counted from when all agents had connected instead, the 300 pings all
        # left at the same instant, a burst no set of browsers sends (--synchronised-pings).
        due = (clock() if self.args.synchronised_pings else agent.hello_at) + agent.ping_seconds
        while not self.stopping and agent.ws is not None:
            while due < clock():
                due += agent.ping_seconds
            await asyncio.sleep(due - clock())
            due += agent.ping_seconds
            with contextlib.suppress(ConnectionClosed):
                await agent.ws.send(json.dumps({"type": "ping", "after": 0}))

    # --- Visitors ----------------------------------------------------------------------------------

    async def connect_visitor(self, visitor: Visitor, gate: asyncio.Semaphore) -> None:
        async with gate:
            http = self.setup_http[visitor.server.url]
            key = self.seed.public_key
            response = await http.request(
                "POST",
                f"/widget/v1/{key}/session",
                headers={"Origin": WIDGET_ORIGIN, "Content-Type": "application/json"},
                body=b"{}",
            )
            if response.status != 200:
                # Our JSON refusals say why (origin_denied...); Django's HTML error page would only be noise.
                detail = response.body[:200].decode(errors="replace") if response.body.startswith(b"{") else ""
                raise RuntimeError(f"widget session: HTTP {response.status} {detail}".strip())
            token = response.json()["token"]
            visitor.ws = await connect(
                f"{visitor.server.ws_url}/ws/widget/{key}/",
                origin=Origin(WIDGET_ORIGIN),
                proxy=None,
                ping_interval=None,
                open_timeout=60,
                close_timeout=2,
            )
            # As the widget does: the token in the first frame, never in the URL.
            await visitor.ws.send(json.dumps({"type": "auth", "token": token}))
            hello = json.loads(await asyncio.wait_for(visitor.ws.recv(), 60))
            if hello.get("type") != "hello":
                raise RuntimeError(f"widget socket said {hello!r} instead of hello")
            # As the widget does on open: ask for anything written while away.
            await visitor.ws.send(json.dumps({"type": "resume", "after": 0}))
            self.spawn(self.visitor_reader(visitor))

    async def visitor_reader(self, visitor: Visitor) -> None:
        assert visitor.ws is not None
        try:
            async for raw in visitor.ws:
                now = clock()
                data = json.loads(raw)
                kind = data.get("type")
                if kind == "ack":
                    record = self.records.get(data.get("client_id"))
                    if record is not None and record.t_ack is None:
                        record.t_ack = now
                elif kind == "message":
                    message = data["message"]
                    if message.get("from") != "agent":
                        continue  # the echo of the visitor's own message (for their other tabs)
                    match = TOKEN_RE.search(message.get("body", ""))
                    record = self.records.get(match.group()) if match else None
                    if record is None:
                        self.foreign += 1
                    elif record.t_reply_recv is None:
                        record.t_reply_recv = now
                    else:
                        self.duplicates += 1
                elif kind == "error":
                    self.errors[f"widget socket error {data.get('code')}"] += 1
        except ConnectionClosed:
            pass
        finally:
            if not self.stopping:
                self.closes[f"visitor socket closed {describe_close(visitor.ws)}"] += 1

    async def visitor_pinger(self) -> None:
        """Each visitor pings every 25 s like the widget; spread evenly, from one task."""
        connected = [v for v in self.visitors if v.ws is not None]
        if not connected:
            return
        gap = VISITOR_PING_SECONDS / len(connected)
        index = 0
        while not self.stopping:
            await asyncio.sleep(gap)
            visitor = connected[index % len(connected)]
            index += 1
            if visitor.ws is not None and visitor.ws.state is State.OPEN:
                with contextlib.suppress(ConnectionClosed):
                    await visitor.ws.send('{"type": "ping"}')

    # --- Load ----------------------------------------------------------------------------------------

    async def send_loop(self, start: float, end: float) -> None:
        """Visitor messages at --rate in total: Poisson (or even) arrivals, visitors in turn."""
        order = [v for v in self.visitors if v.ws is not None]
        self.rng.shuffle(order)
        # In turn, not at random: every visitor has a conversation after one round (the warm-up),
        # and no visitor fires twice in a row by chance.
        due, sequence = start, self.sequence_base
        while True:
            due += self.rng.expovariate(self.args.rate) if self.args.arrivals == "poisson" else 1 / self.args.rate
            if due >= end:
                return
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            visitor = order[sequence % len(order)]
            sequence += 1
            now = clock()
            measured = self.window[0] <= due < self.window[1]
            if measured:
                self.send_lag.append(now - due)
            if visitor.ws is None or visitor.ws.state is not State.OPEN:
                self.skipped_sends += measured
                continue
            token = f"bench-{visitor.index}-{sequence}"  # also the client_id: 8-64 characters
            owner = self.online[visitor.index % len(self.online)].index
            wants_reply = self.rng.random() < self.args.reply_ratio
            sent_at = clock()
            body = f"hello from {token} sent at {sent_at:.6f}"
            record = Record(visitor.index, owner, wants_reply, measured, sent_at, expect_mask=self.open_mask)
            self.records[token] = record
            try:
                await visitor.ws.send(json.dumps({"type": "message", "body": body, "client_id": token}))
            except ConnectionClosed:
                record.send_failed = True
                self.errors["send on a closed visitor socket"] += 1

    async def lag_monitor(self) -> None:
        """How late the client's own event loop runs: if high, the client is the bottleneck."""
        while not self.stopping:
            before = clock()
            await asyncio.sleep(0.05)
            if self.measuring:
                self.loop_lag.append(clock() - before - 0.05)

    async def progress(self, start: float) -> None:
        last = (0, 0, 0, 0)
        while not self.stopping:
            await asyncio.sleep(PROGRESS_SECONDS)
            now = clock()
            phase = "warm-up" if now < self.window[0] else "measuring" if now < self.window[1] else "draining"
            records = list(self.records.values())
            counts = (
                len(records),
                sum(r.t_ack is not None for r in records),
                sum(r.t_agent_first is not None for r in records),
                sum(r.t_reply_recv is not None for r in records),
            )
            rates = [(a - b) / PROGRESS_SECONDS for a, b in zip(counts, last, strict=True)]
            last = counts
            open_sockets = sum(
                1 for c in [*self.visitors, *self.agents] if c.ws is not None and c.ws.state is State.OPEN
            )
            say(
                f"[{now - start:5.1f} s {phase}] sent {rates[0]:.0f}/s, acked {rates[1]:.0f}/s, "
                f"to agents {rates[2]:.0f}/s, replies {rates[3]:.0f}/s; "
                f"outstanding {counts[0] - counts[1]} acks; sockets open {open_sockets}; "
                f"errors {sum(self.errors.values())}"
            )

    def complete(self, record: Record) -> bool:
        if record.send_failed:
            return True
        if record.t_ack is None or record.t_agent_all is None:
            return False
        return not record.wants_reply or record.reply_failed or record.t_reply_recv is not None

    # --- The run -------------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        args = self.args
        # The machine's raw limits first, while nothing else of ours runs (bench/_fanout.py).
        # The bare app runs with the product's websocket flags (compression off unless told), so its
        # idle socket is the floor Smartchat's is compared with.
        flags = ws_args(server_env(args, ""))
        say(
            f"raw limits: a bare uvicorn app ({' '.join(flags)}): fan-out to {args.agents} sockets, "
            f"{args.idle_sockets} idle sockets"
        )
        self.raw = await raw_limits(args.agents, max(args.idle_sockets, 1), flags)
        self.raw_loop: dict[str, Any] = {}
        if args.raw_rate > 0 and "bench" in urlsplit(args.database_url).path:
            say(
                f"raw loop: a bare uvicorn app doing the same work per message, at {args.rate:g} msg/s, "
                f"then at {args.raw_rate:g} msg/s offered"
            )
            self.raw_loop = await raw_loop(args)
        self.memory["idle"] = self.server_rss()
        self.agents = [
            Agent(i, email, self.servers[i % len(self.servers)], HttpClient(self.servers[i % len(self.servers)].url))
            for i, email in enumerate(self.seed.emails)
        ]
        say(f"logging in and connecting {len(self.agents)} agents")
        # A few at a time: each login checks a password hash while holding a pooled connection.
        agent_gate = asyncio.Semaphore(AGENT_SETUP_CONCURRENCY)

        async def connect_gated(agent: Agent) -> None:
            async with agent_gate:
                await self.connect_agent(agent)

        for agent, outcome in zip(
            self.agents,
            await asyncio.gather(*(connect_gated(a) for a in self.agents), return_exceptions=True),
            strict=True,
        ):
            if isinstance(outcome, BaseException):
                self.errors[f"agent connect: {type(outcome).__name__}: {outcome}"] += 1
                agent.ws = None
        self.online = [a for a in self.agents if a.ws is not None]
        if not self.online:
            raise SystemExit(f"bench: no agent could connect: {dict(self.errors)}")
        self.open_mask = sum(1 << a.index for a in self.online)
        self.idle_socket_kib = None
        if args.idle_sockets:
            first = self.online[0]
            say(f"opening {args.idle_sockets} idle inbox sockets (agent {first.index}'s tabs) to weigh them")
            self.idle_socket_kib = await idle_inbox_sockets(
                first.server.ws_url, first.server.url, first.headers["Cookie"], args.idle_sockets, first.server.rss
            )

        say(f"connecting {args.visitors} visitors ({SETUP_CONCURRENCY} at a time)")
        self.visitors = [Visitor(i, self.servers[i % len(self.servers)]) for i in range(args.visitors)]
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        t0 = clock()
        outcomes = await asyncio.gather(*(self.connect_visitor(v, gate) for v in self.visitors), return_exceptions=True)
        for visitor, outcome in zip(self.visitors, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self.errors[f"visitor connect: {type(outcome).__name__}: {str(outcome)[:120]}"] += 1
                visitor.ws = None
        connected = sum(v.ws is not None for v in self.visitors)
        say(
            f"{connected}/{args.visitors} visitors and {len(self.online)}/{args.agents} agents connected in "
            f"{clock() - t0:.1f} s"
        )
        if connected == 0:
            raise SystemExit(f"bench: no visitor could connect: {dict(self.errors)}")
        await asyncio.sleep(1)  # let connect-time work (resume, presence) settle before sampling
        self.memory["connected"] = self.server_rss()
        for setup in self.setup_http.values():
            await setup.close()

        # Background chores, cancelled before the sockets close.
        self.chores = [self.spawn(self.agent_pinger(agent)) for agent in self.online]
        self.chores += [self.spawn(self.visitor_pinger()), self.spawn(self.lag_monitor())]

        warmup = args.warmup if args.warmup is not None else min(max(3.0, connected / args.rate), 30.0)
        start = clock() + 0.1
        self.window = (start + warmup, start + warmup + args.duration)
        say(f"warm-up {warmup:.1f} s, then measuring {args.duration:.0f} s at {args.rate:g} msg/s ({args.arrivals})")
        self.chores.append(self.spawn(self.progress(start)))
        sender = self.spawn(self.send_loop(start, self.window[1]))
        await asyncio.sleep(max(self.window[0] - clock(), 0))
        self.cpu.begin()
        self.measuring = True
        while (left := self.window[1] - clock()) > 0:
            await asyncio.sleep(min(left, 0.5))
            if self.window[1] - clock() > 0.25:
                await asyncio.to_thread(self.cpu.poll)  # off the loop: it reads /proc for every process
        self.measuring = False
        cpu = self.cpu.end()
        await sender

        # Drain: wait for what the window sent, up to --timeout; whatever is missing then is lost.
        deadline = self.window[1] + args.timeout
        measured = [r for r in self.records.values() if r.measured]
        while clock() < deadline and not all(self.complete(r) for r in measured):
            await asyncio.sleep(0.1)
        drained = clock() - self.window[1]
        say(f"drained in {drained:.1f} s")
        self.memory["end"] = self.server_rss()
        for server in self.servers:
            if server.log_path is not None:
                server.log_mark = server.log_path.stat().st_size
        if args.probes:
            say(f"fan-out probe: {args.probes} notes, one at a time, each to every open agent socket")
            self.probe = await self.fanout_probe(args.probes)
        open_visitors = sum(1 for v in self.visitors if v.ws is not None and v.ws.state is State.OPEN)
        open_agents = sum(1 for a in self.agents if a.ws is not None and a.ws.state is State.OPEN)
        server_tcp = [server.established() for server in self.servers]

        self.stopping = True
        say("closing sockets")
        await self.close_all()
        return self.results(cpu, drained, warmup, connected, open_visitors, open_agents, server_tcp)

    async def fanout_probe(self, rounds: int) -> dict[str, Any]:
        """One event at a time to every open agent socket, nothing else running: its fan-out alone.

        An agent posts a note (``POST .../notes``); every agent of the team sees it. Timed from
        the POST to the last agent socket receiving it, and from the first to the last.
        """
        if self.probe_target is None:
            return {}
        agent, conversation_id = self.probe_target
        expected = bin(self.open_mask).count("1")
        to_last: list[float] = []
        spread: list[float] = []
        answered: list[float] = []
        samples: list[dict[str, float]] = []
        for number in range(rounds):
            body = f"fanout-probe-{number}-{secrets.token_hex(3)}"
            seen = self.probe_seen[body] = []
            started = clock()
            response = await agent.http.request(
                "POST",
                f"/api/v1/conversations/{conversation_id}/notes",
                headers=agent.headers,
                body=json.dumps({"body": body}).encode(),
            )
            responded = clock()
            if response.status != 201:
                self.errors[f"probe note HTTP {response.status}"] += 1
                break
            answered.append(responded - started)
            deadline = clock() + self.args.timeout
            while len(seen) < expected and clock() < deadline:
                await asyncio.sleep(0.002)
            if len(seen) >= expected:
                to_last.append(max(seen) - started)
                spread.append(max(seen) - min(seen))
                # Monotonic times (one clock for the whole machine): to set beside a server's trace.
                samples.append({"post": started, "answered": responded, "first": min(seen), "last": max(seen)})
            await asyncio.sleep(0.2)
        return {
            "sockets": expected,
            "rounds": rounds,
            "complete": len(to_last),
            "post_to_all_ms": percentiles(to_last),
            "first_to_all_ms": percentiles(spread),
            "post_to_201_ms": percentiles(answered),
            "samples": samples,
        }

    async def close_all(self) -> None:
        for task in self.chores:
            task.cancel()
        sockets = [c.ws for c in [*self.visitors, *self.agents] if c.ws is not None]
        for start in range(0, len(sockets), 200):
            await asyncio.gather(*(ws.close() for ws in sockets[start : start + 200]), return_exceptions=True)
        for agent in self.agents:
            await agent.http.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def results(
        self,
        cpu: dict[str, float],
        drained: float,
        warmup: float,
        connected: int,
        open_visitors: int,
        open_agents: int,
        server_tcp: list[int | None],
    ) -> dict[str, Any]:
        args = self.args
        lo, hi = self.window
        seconds = hi - lo
        records = list(self.records.values())
        measured = [r for r in records if r.measured]
        sent = [r for r in measured if not r.send_failed]

        def in_window(times: Iterable[float | None]) -> int:
            return sum(1 for t in times if t is not None and lo <= t < hi)

        def rate(count: int) -> dict[str, float | int]:
            return {"total": count, "per_second": round(count / seconds, 1)}

        def latencies(pairs: Iterable[tuple[float | None, float | None]]) -> list[float]:
            return [end - begin for begin, end in pairs if begin is not None and end is not None]

        agent_count = len(self.online)
        lat = {
            "visitor_send_to_ack": latencies((r.t_send, r.t_ack) for r in sent),
            "visitor_send_to_first_agent": latencies((r.t_send, r.t_agent_first) for r in sent),
            "visitor_send_to_all_agents": latencies((r.t_send, r.t_agent_all) for r in sent),
            "first_agent_to_all_agents": latencies((r.t_agent_first, r.t_agent_all) for r in sent),
            "agent_reply_post_to_201": latencies((r.t_reply_post, r.t_reply_done) for r in sent),
            "agent_reply_to_visitor": latencies((r.t_reply_post, r.t_reply_recv) for r in sent),
            "visitor_send_to_reply_received": latencies((r.t_send, r.t_reply_recv) for r in sent),
        }
        wanted = [r for r in sent if r.wants_reply]
        posted = [r for r in wanted if r.t_reply_done is not None and not r.reply_failed]
        late = sum(1 for values in lat.values() for v in values if v > args.timeout)
        lost = {
            "send_failed": sum(r.send_failed for r in measured),
            "not_acked": sum(r.t_ack is None for r in sent),
            "never_reached_an_agent": sum(r.t_agent_first is None for r in sent),
            # Counted against the agents whose socket was open when the message was sent.
            "agent_deliveries_missing": sum((r.expect_mask & ~r.seen_mask).bit_count() for r in sent),
            "replies_not_posted": sum(r.t_reply_post is None for r in wanted),
            "replies_failed": sum(r.reply_failed for r in wanted),
            "replies_not_received": sum(r.t_reply_recv is None for r in posted),
        }
        memory = dict(self.memory)
        sockets_total = connected + agent_count
        per_socket = None
        if memory.get("idle") and memory.get("connected") and sockets_total:
            per_socket = round((memory["connected"] - memory["idle"]) / sockets_total / 1024, 1)
        return {
            "throughput": {
                "window_seconds": round(seconds, 2),
                "visitor_messages_sent": rate(in_window(r.t_send for r in records)),
                "visitor_messages_acked": rate(in_window(r.t_ack for r in records)),
                "delivered_to_an_agent": rate(in_window(r.t_agent_first for r in records)),
                "agent_replies_posted": rate(in_window(r.t_reply_done for r in records if not r.reply_failed)),
                "replies_delivered_to_visitor": rate(in_window(r.t_reply_recv for r in records)),
            },
            "latency_ms": {name: percentiles(values) for name, values in lat.items()},
            "lost": lost,
            # Messages (of those sent in the window) for which anything above is missing.
            "messages_with_losses": sum(
                1
                for r in sent
                if r.t_ack is None or r.t_agent_all is None or (r.wants_reply and r.t_reply_recv is None)
            ),
            "messages_in_window": len(measured),
            "late_over_timeout": late,
            "duplicates": self.duplicates,
            "unknown_tokens": self.foreign,
            "skipped_sends_closed_socket": self.skipped_sends,
            "errors": dict(self.errors),
            "unexpected_socket_closes": dict(self.closes),
            "sockets": {
                "visitors_connected": connected,
                "agents_connected": agent_count,
                "open_at_end": open_visitors + open_agents,
                "visitors_open_at_end": open_visitors,
                "agents_open_at_end": open_agents,
                "server_side_established": None if None in server_tcp else sum(t for t in server_tcp if t),
            },
            "server_memory_bytes": memory,
            "server_memory_per_socket_kib": per_socket,
            "idle_inbox_socket_kib": self.idle_socket_kib,
            "fanout_probe": self.probe,
            "raw": self.raw,
            "raw_loop": getattr(self, "raw_loop", {}),
            "cpu_percent": cpu,
            "client": {
                "loop_lag_ms": percentiles(self.loop_lag),
                "send_schedule_lag_ms": percentiles(self.send_lag),
            },
            "warmup_seconds": round(warmup, 2),
            "drain_seconds": round(drained, 2),
        }


class RawLoopBench(Bench):
    """The raw loop (bench/_raw_loop.py) driven by the same client code and arrivals, no replies."""

    def __init__(self, args: argparse.Namespace, server: Server) -> None:
        raw_args = argparse.Namespace(**{**vars(args), "reply_ratio": 0.0})
        names = [f"raw-agent-{index}" for index in range(args.agents)]
        super().__init__(raw_args, [server], Seed("raw", names, "", "raw loop"))

    async def connect_agent(self, agent: Agent) -> None:
        agent.ws = await connect(
            f"{agent.server.ws_url}/ws/inbox/", proxy=None, ping_interval=None, open_timeout=30, close_timeout=2
        )
        hello = json.loads(await asyncio.wait_for(agent.ws.recv(), 30))
        if hello.get("type") != "hello":
            raise RuntimeError(f"raw inbox socket said {hello!r} instead of hello")
        agent.ping_seconds = float(hello.get("ping_seconds") or 25)
        self.spawn(self.agent_reader(agent))

    async def connect_visitor(self, visitor: Visitor, gate: asyncio.Semaphore) -> None:
        async with gate:
            visitor.ws = await connect(
                f"{visitor.server.ws_url}/ws/widget/raw/",
                origin=Origin(WIDGET_ORIGIN),
                proxy=None,
                ping_interval=None,
                open_timeout=60,
                close_timeout=2,
            )
            await visitor.ws.send(json.dumps({"type": "auth", "token": "raw"}))
            hello = json.loads(await asyncio.wait_for(visitor.ws.recv(), 60))
            if hello.get("type") != "hello":
                raise RuntimeError(f"raw widget socket said {hello!r} instead of hello")
            await visitor.ws.send(json.dumps({"type": "resume", "after": 0}))
            self.spawn(self.visitor_reader(visitor))

    async def connect(self) -> int:
        self.agents = [
            Agent(i, email, self.servers[0], HttpClient(self.servers[0].url))
            for i, email in enumerate(self.seed.emails)
        ]
        await asyncio.gather(*(self.connect_agent(a) for a in self.agents))
        self.online = list(self.agents)
        self.open_mask = sum(1 << a.index for a in self.online)
        self.visitors = [Visitor(i, self.servers[0]) for i in range(self.args.visitors)]
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        await asyncio.gather(*(self.connect_visitor(v, gate) for v in self.visitors))
        self.chores = [self.spawn(self.agent_pinger(agent)) for agent in self.online]
        self.chores += [self.spawn(self.visitor_pinger()), self.spawn(self.lag_monitor())]
        return len(self.visitors)

    async def phase(self, rate: float, duration: float, warmup: float) -> dict[str, Any]:
        """Visitor messages at ``rate`` for ``warmup`` + ``duration`` s; the window's figures."""
        self.args.rate = rate
        self.records, self.send_lag, self.loop_lag = {}, [], []
        start = clock() + 0.1
        self.window = (start + warmup, start + warmup + duration)
        sender = self.spawn(self.send_loop(start, self.window[1]))
        await asyncio.sleep(max(self.window[0] - clock(), 0))
        self.cpu.begin()
        self.measuring = True
        while (left := self.window[1] - clock()) > 0:
            await asyncio.sleep(min(left, 0.5))
            if self.window[1] - clock() > 0.25:
                await asyncio.to_thread(self.cpu.poll)
        self.measuring = False
        cpu = self.cpu.end()
        await sender
        deadline = self.window[1] + self.args.timeout
        measured = [r for r in self.records.values() if r.measured]
        while clock() < deadline and not all(self.complete(r) for r in measured):
            await asyncio.sleep(0.1)
        self.sequence_base += 10**6  # the next phase's tokens are new client_ids
        r = self.results(cpu, clock() - self.window[1], warmup, len(self.visitors), 0, 0, [None])
        t, lat = r["throughput"], r["latency_ms"]
        return {
            "offered": rate,
            "seconds": duration,
            "sent_per_s": t["visitor_messages_sent"]["per_second"],
            "acked_per_s": t["visitor_messages_acked"]["per_second"],
            "to_agent_per_s": t["delivered_to_an_agent"]["per_second"],
            "send_to_first_agent_ms": lat["visitor_send_to_first_agent"],
            "send_to_ack_ms": lat["visitor_send_to_ack"],
            "messages_with_losses": r["messages_with_losses"],
            "client_loop_lag_p99_ms": r["client"]["loop_lag_ms"]["p99"],
            "cpu_percent": cpu,
        }


def create_raw_tables(database_url: str) -> None:
    import psycopg

    sys.path.insert(0, str(ROOT / "bench"))
    from _raw_loop import TABLES

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TABLES)
        conn.execute("TRUNCATE bench_raw_message, bench_raw_conversation")


async def raw_loop(args: argparse.Namespace) -> dict[str, Any]:
    """The raw loop at the offered rate (latency) and at --raw-rate (its sustained msg/s)."""
    await asyncio.to_thread(create_raw_tables, args.database_url)
    port = free_port()
    env = {
        **os.environ,
        "RAW_LOOP_DATABASE_URL": args.database_url,
        "RAW_LOOP_REDIS_URL": args.redis_url,
        "RAW_LOOP_CHANNEL": f"{LAYER_PREFIX}-raw-loop-{secrets.token_hex(4)}",
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "_raw_loop:app", "--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning", "--no-access-log", "--lifespan", "off", "--no-proxy-headers"),
            *ws_args(server_env(args, "")),
        ],
        cwd=ROOT / "bench",
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    server = Server(f"http://127.0.0.1:{port}", process, None, process.pid)
    bench: RawLoopBench | None = None
    try:
        await asyncio.to_thread(wait_healthy, server, 30.0)
        bench = RawLoopBench(args, server)
        await bench.connect()
        at_rate = await bench.phase(args.rate, min(args.duration, RAW_LOOP_SECONDS), 2.0)
        saturated = await bench.phase(args.raw_rate, args.raw_seconds, 1.0)
        return {"at_offered_rate": at_rate, "saturated": saturated}
    finally:
        if bench is not None:
            bench.stopping = True
            await bench.close_all()
        stop_servers([server])


# --- Report ---------------------------------------------------------------------------------------


def mib(value: int | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.0f} MiB"


def server_log_summary(servers: list[Server]) -> dict[str, Any]:
    """What the servers logged (WARNING and above): during the run, and while sockets closed."""
    out: dict[str, Any] = {}
    for server in servers:
        if server.log_path is None or not server.log_path.exists():
            continue
        raw = server.log_path.read_bytes()
        mark = len(raw) if server.log_mark is None else server.log_mark
        parts = {}
        for part, chunk in (("run", raw[:mark]), ("teardown", raw[mark:])):
            lines = chunk.decode(errors="replace").splitlines()
            # The last line of a traceback names the exception; "Traceback", frames and blanks don't.
            # Ids become "N" so that one failure on many conversations counts as one kind.
            heads = [
                re.sub(r"(?<=/)\d+(?=/)|(?<=event )\d+", "N", line)
                for line in lines
                if line.strip() and not line.startswith((" ", "Traceback", "The above", "During"))
            ]
            parts[part] = {
                "lines": len(lines),
                "tracebacks": sum(line.startswith("Traceback") for line in lines),
                "top": Counter(heads).most_common(6),
            }
        out[str(server.log_path.relative_to(ROOT))] = parts
    return out


def target_verdict(meta: dict[str, Any], r: dict[str, Any]) -> str:
    """Judge a run against the target, if the load offered was at least the target's."""
    if meta["rate"] < TARGET["rate"] or meta["visitors"] + meta["agents"] < TARGET["sockets"]:
        return (
            f"not applicable: the offered load ({meta['rate']:g} msg/s, {meta['visitors'] + meta['agents']} "
            f"sockets) is below {TARGET['rate']:g} msg/s with {TARGET['sockets']} sockets"
        )
    acked = r["throughput"]["visitor_messages_acked"]["per_second"]
    sockets = r["sockets"]["open_at_end"]
    p99s = {
        "send to agent": r["latency_ms"]["visitor_send_to_first_agent"]["p99"],
        "reply to visitor": r["latency_ms"]["agent_reply_to_visitor"]["p99"],
    }
    lost = r["messages_with_losses"] + r["lost"]["send_failed"]
    misses = []
    if acked < TARGET["rate"] * 0.98:  # Poisson arrivals: 2% slack for the window's luck
        misses.append(f"sustained {acked:g} acked msg/s")
    if sockets < TARGET["sockets"]:
        misses.append(f"{sockets} sockets open at the end")
    for name, p99 in p99s.items():
        if p99 is None or p99 >= TARGET["p99_ms"]:
            misses.append(f"p99 {name} {'n/a' if p99 is None else f'{p99:g} ms'}")
    if lost:
        misses.append(f"{lost} messages with losses")
    if misses:
        return "NOT MET: " + ", ".join(misses)
    shown = ", ".join(f"{name} {p99:g} ms" for name, p99 in p99s.items())
    return f"MET: p99 {shown}; {acked:g} acked msg/s, {sockets} sockets, nothing lost"


def print_report(meta: dict[str, Any], r: dict[str, Any]) -> None:
    t = r["throughput"]
    print()
    print(f"Smartchat live chat benchmark  {meta['started']}  commit {meta['commit']}")
    print(f"  servers   {meta['servers_desc']}")
    print(
        f"  load      {meta['visitors']} visitors, {meta['agents']} agents ({meta['agent_role']}), "
        f"{meta['rate']:g} visitor msg/s {meta['arrivals']}, reply ratio {meta['reply_ratio']:g}; "
        f"warm-up {r['warmup_seconds']:g} s, measured {t['window_seconds']:g} s, drained {r['drain_seconds']:g} s"
    )
    print()
    print(f"  throughput in the measured window            {'per s':>8} {'total':>8}")
    for label, key in (
        ("visitor messages sent", "visitor_messages_sent"),
        ("visitor messages acked by the server", "visitor_messages_acked"),
        ("visitor messages delivered to an agent", "delivered_to_an_agent"),
        ("agent replies posted (HTTP 201)", "agent_replies_posted"),
        ("agent replies delivered to the visitor", "replies_delivered_to_visitor"),
    ):
        print(f"    {label:<42} {t[key]['per_second']:>8g} {t[key]['total']:>8}")
    print()
    print(f"  latency, ms (messages sent in the window)     {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    for label, key in (
        ("visitor send -> ack", "visitor_send_to_ack"),
        ("visitor send -> first agent receives", "visitor_send_to_first_agent"),
        ("visitor send -> all open agents receive", "visitor_send_to_all_agents"),
        ("first agent -> all open agents receive", "first_agent_to_all_agents"),
        ("agent reply POST -> 201", "agent_reply_post_to_201"),
        ("agent reply POST -> visitor receives", "agent_reply_to_visitor"),
        ("visitor send -> reply received", "visitor_send_to_reply_received"),
    ):
        row = r["latency_ms"][key]
        cells = " ".join(f"{'-' if row[q] is None else format(row[q], '.1f'):>8}" for q in ("p50", "p95", "p99", "max"))
        print(f"    {label:<42} {row['n']:>6} {cells}")
    loop = r.get("raw_loop") or {}
    if loop:
        at, sat = loop["at_offered_rate"], loop["saturated"]
        acked = t["visitor_messages_acked"]["per_second"]
        print()
        print(
            "  raw loop  a bare uvicorn app doing the same work per message (websocket, one transaction, "
            "Redis publish, push to the agent sockets), same client and arrivals, no replies:"
        )
        for label, row in (("at the offered rate", at), ("saturated", sat)):
            lat = row["send_to_first_agent_ms"]
            print(
                f"    {label:<20} {row['offered']:>6g} msg/s offered, {row['seconds']:g} s: {row['acked_per_s']:g} "
                f"acked msg/s, send -> first agent p50 {lat['p50']} / p99 {lat['p99']} ms "
                f"(client loop lag p99 {row['client_loop_lag_p99_ms']} ms)"
            )
        if sat["acked_per_s"] >= 0.9 * sat["offered"]:
            print(f"    (the raw loop kept up with {sat['offered']:g} msg/s: not saturated, raise --raw-rate)")
        share = 100 * acked / sat["acked_per_s"] if sat["acked_per_s"] else 0.0
        print(
            f"  share     sustained {acked:g} acked msg/s = {share:.0f}% of the raw loop's {sat['acked_per_s']:g} "
            f"msg/s (goal >= 30%; never above {100 * meta['rate'] / max(sat['acked_per_s'], 1e-9):.0f}% "
            f"at {meta['rate']:g} msg/s offered)"
        )
    print()
    lost = r["lost"]
    print(
        f"  lost      {r['messages_with_losses']} of {r['messages_in_window']} messages sent in the window had "
        f"something still missing {meta['timeout']:g} s after the window"
    )
    if any(lost.values()):
        print("            " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in lost.items() if v))
    problems = {
        "late (over the timeout)": r["late_over_timeout"],
        "duplicates": r["duplicates"],
        "unknown tokens": r["unknown_tokens"],
        "sends skipped (socket closed)": r["skipped_sends_closed_socket"],
    }
    print("  other     " + (", ".join(f"{k} {v}" for k, v in problems.items() if v) or "none"))
    print("  errors    " + (", ".join(f"{k}: {v}" for k, v in r["errors"].items()) or "none"))
    print("  closed    " + (", ".join(f"{k}: {v}" for k, v in r["unexpected_socket_closes"].items()) or "none"))
    s = r["sockets"]
    print()
    print(
        f"  sockets   {s['visitors_connected']}/{meta['visitors']} visitors + {s['agents_connected']}/{meta['agents']} "
        f"agents connected; open at the end: {s['open_at_end']} (server side: "
        f"{'n/a' if s['server_side_established'] is None else s['server_side_established']} TCP incl. HTTP keep-alive)"
    )
    m = r["server_memory_bytes"]
    per = r["server_memory_per_socket_kib"]
    print(
        f"  memory    server RSS idle {mib(m.get('idle'))}, connected {mib(m.get('connected'))}, "
        f"end {mib(m.get('end'))}" + ("" if per is None else f" (~{per:g} KiB per socket)")
    )
    raw = r["raw"]
    probe = r["fanout_probe"]
    if probe:
        print(
            f"  fan-out   one event to {probe['sockets']} agents' sockets, alone "
            f"({probe['complete']}/{probe['rounds']} notes): note POST -> last socket "
            f"p50 {probe['post_to_all_ms']['p50']} / p99 "
            f"{probe['post_to_all_ms']['p99']} ms, first -> last socket p50 {probe['first_to_all_ms']['p50']} / p99 "
            f"{probe['first_to_all_ms']['p99']} ms (goal < 150 ms at 300); note POST -> its 201 "
            f"p50 {probe['post_to_201_ms']['p50']} / p99 {probe['post_to_201_ms']['p99']} ms"
        )
    print(
        f"            raw limit, a bare uvicorn app sending one frame to {raw['fanout_sockets']} sockets: "
        f"p50 {raw['fanout_ms']['p50']} / p99 {raw['fanout_ms']['p99']} ms"
    )
    print(
        f"  idle      {r['idle_inbox_socket_kib']} KiB per idle inbox socket (goal < 40 KiB); raw limit, "
        f"a bare uvicorn socket: {raw['idle_socket_kib']} KiB ({' '.join(raw['ws_flags'])})"
    )
    c = r["cpu_percent"]
    print(
        f"  cpu       servers {c['servers']:g}%, postgres {c['postgres']:g}%, redis {c['redis']:g}%, "
        f"bench client {c['client']:g}% (100% = one core); machine {c['machine']:g}% of {meta['cpus']} cores"
    )
    cl = r["client"]
    print(
        f"  client    event-loop lag p99 {cl['loop_lag_ms']['p99']} ms, max {cl['loop_lag_ms']['max']} ms; "
        f"send schedule lag p99 {cl['send_schedule_lag_ms']['p99']} ms"
    )
    for path, parts in meta.get("server_logs", {}).items():
        print(f"  log       {path}")
        for part, info in parts.items():
            print(f"              {part:<9} {info['lines']} lines, {info['tracebacks']} tracebacks")
            for line, count in info["top"]:
                print(f"                {count:>5} x {line[:140]}")
    print()
    print(
        f"  target    p99 < {TARGET['p99_ms']:g} ms at {TARGET['rate']:g} msg/s with {TARGET['sockets']} sockets: "
        f"{target_verdict(meta, r)}"
    )
    print()


# --- Entry point ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=1, help="uvicorn processes to start (same PostgreSQL + Redis)")
    parser.add_argument("--target", metavar="URL", help="an already running server instead (http://host:port)")
    parser.add_argument("--visitors", type=int, default=200, help="widget visitor sockets")
    parser.add_argument("--agents", type=int, default=5, help="inbox agent sockets (each sees every message)")
    parser.add_argument(
        "--probes", type=int, default=30, help="after the drain, single notes timed to every agent socket (0: skip)"
    )
    parser.add_argument(
        "--idle-sockets", type=int, default=100, help="extra idle inbox sockets opened to weigh one (0: skip)"
    )
    parser.add_argument("--rate", type=float, default=50.0, help="visitor messages per second, all visitors together")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds (after the warm-up)")
    parser.add_argument(
        "--warmup", type=float, default=None, help="seconds before measuring (default: one round of visitors, 3-30 s)"
    )
    parser.add_argument("--reply-ratio", type=float, default=1.0, help="fraction of visitor messages an agent answers")
    parser.add_argument(
        "--arrivals", choices=("poisson", "even"), default="poisson", help="spacing of visitor messages"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for stragglers; later = lost")
    parser.add_argument("--agent-role", choices=("agent", "admin"), default="agent", help="agents' built-in role")
    parser.add_argument(
        "--database-url",
        help=f"PostgreSQL (default {DEFAULT_DATABASE_URL}; with --target: the server's, or $DATABASE_URL)",
    )
    parser.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help=f"Redis for the channel layer (default {DEFAULT_REDIS_URL})"
    )
    parser.add_argument(
        "--server-env", action="append", default=[], metavar="KEY=VALUE", help="extra environment for started servers"
    )
    parser.add_argument(
        "--raw-rate",
        type=float,
        default=1500.0,
        help="msg/s offered to the raw loop to find its sustained rate (0: skip the raw loop)",
    )
    parser.add_argument(
        "--synchronised-pings",
        action="store_true",
        help="every agent pings at the same instant (as after a restart that reconnected all at once), "
        "not every ping interval from its own hello as browsers do",
    )
    parser.add_argument("--raw-seconds", type=float, default=5.0, help="measured seconds of the raw loop at --raw-rate")
    parser.add_argument("--seed", type=int, default=1, help="random seed for arrivals, order and replies")
    parser.add_argument(
        "--json", nargs="?", const="", metavar="PATH", help="also write results as JSON (default path: bench/results/)"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.visitors < 1 or args.agents < 1 or args.servers < 1:
        parser.error("--rate, --duration, --visitors, --agents and --servers must be positive")
    if not 0 <= args.reply_ratio <= 1:
        parser.error("--reply-ratio must be between 0 and 1")
    if args.target and args.servers != 1:
        parser.error("--target and --servers are exclusive: start the servers yourself")
    if args.database_url is None:
        args.database_url = os.environ.get("DATABASE_URL") if args.target else DEFAULT_DATABASE_URL
        if not args.database_url:
            parser.error("--target needs the server's database (--database-url or $DATABASE_URL) to seed a company")
    return args


def raise_open_files(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        soft = wanted
    return soft


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        if not head.strip():
            return "unknown (not a git checkout)"
        return head.strip() + ("+dirty" if dirty.strip() else "")
    except OSError:
        return "unknown"


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # Client sockets + HTTP pools + setup connections, with room to spare; the servers inherit it.
    limit = raise_open_files(2 * (args.visitors + args.agents * (HTTP_POOL_SIZE + 1)) + 256)
    if limit < args.visitors + args.agents + 64:
        say(f"warning: only {limit} open files allowed; sockets will fail")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "commit": git_commit(),
        "cpus": psutil.cpu_count(),
        "visitors": args.visitors,
        "agents": args.agents,
        "agent_role": args.agent_role,
        "rate": args.rate,
        "arrivals": args.arrivals,
        "reply_ratio": args.reply_ratio,
        "duration": args.duration,
        "timeout": args.timeout,
        "seed": args.seed,
        "target": args.target,
        "server_count": 1 if args.target else args.servers,
    }
    servers: list[Server] = []
    try:
        if args.target:
            say(f"seeding a fresh company into {urlsplit(args.database_url).path.lstrip('/')} for {args.target}")
            seeded = seed(args, migrate=False)
            target = args.target.rstrip("/")
            servers = [Server(target, pid=find_target_pid(target))]
            wait_healthy(servers[0], timeout=10)
            meta["servers_desc"] = f"target {target} (pid {servers[0].pid or 'not visible: no memory/CPU figures'})"
        else:
            db_name = urlsplit(args.database_url).path.lstrip("/")
            say(f"recreating database {db_name} and clearing Redis keys {LAYER_PREFIX}*")
            recreate_database(args.database_url)
            cleared = clear_layer(args.redis_url)
            say(f"migrating and seeding (cleared {cleared} stale layer keys)")
            seeded = seed(args, migrate=True)
            log_dir = RESULTS_DIR / "logs" / run_id
            log_dir.mkdir(parents=True, exist_ok=True)
            say(f"starting {args.servers} uvicorn server(s); logs in {log_dir.relative_to(ROOT)}")
            servers = start_servers(args.servers, server_env(args, secrets.token_urlsafe(50)), log_dir)
            meta["servers_desc"] = (
                f"{len(servers)} uvicorn process(es) {', '.join(s.url for s in servers)}; "
                f"PostgreSQL {db_name} (recreated), Redis {args.redis_url} prefix {LAYER_PREFIX}"
            )
        meta["company"] = seeded.company
        loop_factory = None
        with contextlib.suppress(ImportError):
            import uvloop

            loop_factory = uvloop.new_event_loop
        meta["client_loop"] = "uvloop" if loop_factory else "asyncio"
        bench = Bench(args, servers, seeded)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            results = runner.run(bench.run())
    except KeyboardInterrupt:
        say("interrupted; stopping servers")
        return 130
    finally:
        stop_servers(servers)
    meta["server_logs"] = server_log_summary(servers)
    print_report(meta, results)
    if args.json is not None:
        path = (
            Path(args.json)
            if args.json
            else RESULTS_DIR
            / (f"live_chat-{run_id}-s{meta['server_count']}-v{args.visitors}-a{args.agents}-r{args.rate:g}.json")
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
        say(f"results written to {path}")
    lost = sum(results["lost"].values())
    return 1 if lost or results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
