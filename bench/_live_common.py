"""The live chat bench's settings, its HTTP client, and the servers, database and seed it runs on."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil

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


def _spawn(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """A child process of the bench, its output in ``log_path``: in its own session (Ctrl-C
    reaches only the bench, which closes sockets first), and dying with the bench."""
    with log_path.open("w") as log:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def start_servers(count: int, env: dict[str, str], log_dir: Path) -> list[Server]:
    servers = []
    for number in range(1, count + 1):
        port = free_port()
        log_path = log_dir / f"server-{number}-port-{port}.log"
        process = _spawn(
            # The Procfile's command, quieter: access logs would cost CPU on the measured path.
            [
                *(sys.executable, "-m", "uvicorn", "smartchat.asgi:application"),
                *("--host", "127.0.0.1", "--port", str(port)),
                *("--log-level", "warning", "--no-access-log", "--lifespan", "off", "--no-proxy-headers"),
                *ws_args(env),
            ],
            env,
            log_path,
        )
        servers.append(Server(f"http://127.0.0.1:{port}", process, log_path, process.pid))
    for server in servers:
        wait_healthy(server)
    return servers


def start_worker_and_beat(env: dict[str, str], log_dir: Path) -> list[subprocess.Popen]:
    """The Procfile's worker and beat beside the servers, as production runs them: beat's
    schedule (snooze wakes, presence, sweeps, the statistics' applier every 2 s) costs the
    machine what it costs there."""
    return [
        _spawn([sys.executable, "-m", "celery", "-A", "smartchat", *command, "--loglevel=warning"], env, log_dir / name)
        for name, command in (
            ("worker.log", ["worker", "--pool=solo", "--concurrency=1"]),
            ("beat.log", ["beat", "--schedule", str(log_dir / "celerybeat-schedule")]),
        )
    ]


def stop_processes(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
    stop_processes([server.process for server in servers if server.process])


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
