"""Telegram benchmark: the fake Bot API against real servers, Celery workers, PostgreSQL and Redis.

Starts the fake Telegram server (tests/fakes/telegram.py) in this process, uvicorn, a Celery
worker, the poller worker (queue ``polls``) and beat, seeds a company with two Telegram
channels pointed at the fake (one in webhook mode, one polling), connects one agent inbox
socket, and reports: webhook updates stored per second, fake update -> agent socket latency
in webhook and polling mode, outbound sendMessage calls per second through one worker, and
the bare request rates of this machine beside them.

Usage and the meaning of every figure: bench/README.md ("Telegram benchmark").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import psutil
from live_chat import (  # bench/, the script's own folder
    DEFAULT_REDIS_URL,
    RESULTS_DIR,
    ROOT,
    HttpClient,
    Server,
    _die_with_parent,
    _terminate,
    clear_layer,
    clock,
    free_port,
    git_commit,
    percentiles,
    recreate_database,
    say,
    seed,
    server_env,
    start_servers,
    stop_servers,
    wait_healthy,
)
from websockets.exceptions import ConnectionClosed

sys.path.insert(0, str(ROOT))
from tests.fakes.telegram import FakeTelegram

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/smartchat_bench_telegram"
WEBHOOK_TOKEN = "700000001:bench-webhook-" + "a" * 24
POLLING_TOKEN = "700000002:bench-polling-" + "b" * 24
GOALS_MS = {"webhook": 200.0, "polling": 2000.0}


def start_process(name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> Server:
    log_path = log_dir / f"{name}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    return Server(name, process, log_path, process.pid)


def start_workers(env: dict[str, str], log_dir: Path, poller_threads: int) -> list[Server]:
    celery = [sys.executable, "-m", "celery", "-A", "smartchat"]
    return [
        # The Procfile's worker, poller and beat.
        start_process(
            "worker", [*celery, "worker", "--pool=solo", "--concurrency=1", "--loglevel=warning"], env, log_dir
        ),
        start_process(
            "poller",
            [
                *celery,
                *("worker", "-Q", "polls", "--pool=threads", f"--concurrency={poller_threads}"),
                *("--hostname=poller@%h", "--loglevel=warning"),
            ],
            env,
            log_dir,
        ),
        start_process(
            "beat", [*celery, "beat", "--loglevel=warning", "-s", str(log_dir / "celerybeat-schedule")], env, log_dir
        ),
    ]


def add_channels(email: str, fake: FakeTelegram, public_url: str) -> dict[str, int]:
    """Two Telegram channels through the real writer: setWebhook reaches the fake for the first."""
    from django.conf import settings

    from helpdesk.accounts import actions
    from helpdesk.accounts.models import Employee

    settings.PUBLIC_URL = public_url
    settings.TELEGRAM_API_URL = fake.url
    admin = Employee.objects.get(user__email=email)
    ids = {}
    for mode, token in (("webhook", WEBHOOK_TOKEN), ("polling", POLLING_TOKEN)):
        values = actions.clean_settings("telegram", {"bot_token": token, "mode": mode})
        ids[mode] = actions.add_channel(by=admin, kind="telegram", name=f"Bench {mode}", values=values).pk
    if not fake.webhook(WEBHOOK_TOKEN):
        raise SystemExit("bench: saving the webhook channel did not call setWebhook on the fake")
    return ids


def stored_inbound(channel_id: int) -> int:
    from django.db import connections

    from helpdesk.conversations.models import Message

    try:
        return Message.objects.filter(channel_id=channel_id, direction="in").count()
    finally:
        connections.close_all()


async def hammer(url: str, seconds: float, concurrency: int) -> float:
    """Requests/s a URL answers with ``concurrency`` keep-alive clients for ``seconds``."""
    done = 0
    end = clock() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def client() -> None:
            nonlocal done
            while clock() < end:
                async with session.get(url) as response:
                    await response.read()
                    done += 1

        start = clock()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return round(done / (clock() - start), 1)


class Bench:
    def __init__(
        self,
        args: argparse.Namespace,
        server: Server,
        hello: Server,
        fake: FakeTelegram,
        channels: dict[str, int],
        email: str,
        password: str,
    ):
        self.args, self.server, self.hello, self.fake, self.channels = args, server, hello, fake, channels
        self.email, self.password = email, password
        self.http = HttpClient(server.url)
        self.pushed: dict[str, float] = {}  # token -> when the fake queued the update
        self.received: dict[str, float] = {}  # token -> when the agent socket got message.created
        self.conversations: set[int] = set()
        self.errors: list[str] = []
        self.seq = 0

    async def login(self) -> tuple[dict[str, str], str]:
        from live_chat import Agent  # its browser-like login, reused
        from live_chat import Bench as LiveBench

        agent = Agent(0, self.email, self.server, self.http)
        live = LiveBench.__new__(LiveBench)
        live.seed = SimpleNamespace(password=self.password)
        live.spawn = lambda coro: coro.close()  # no live-chat reader: ours follows
        await live.connect_agent(agent)
        self.ws = agent.ws
        asyncio.get_running_loop().create_task(self.reader())
        return agent.headers

    async def reader(self) -> None:
        try:
            async for raw in self.ws:
                now = clock()
                data = json.loads(raw)
                if data.get("type") == "error":
                    self.errors.append(f"inbox error {data.get('code')}")
                if data.get("type") != "event" or data["event"].get("type") != "message.created":
                    continue
                message = data["event"]["payload"]["message"]
                body = message.get("body") or ""
                if message.get("direction") == "in" and body in self.pushed:
                    self.received.setdefault(body, now)
                    self.conversations.add(data["event"]["conversation_id"])
        except ConnectionClosed:
            pass

    def push(self, token: str, users: list[dict]) -> str:
        self.seq += 1
        body = f"tg-{self.seq}"
        update = self.fake.text_update(token, users[self.seq % len(users)], body)
        self.pushed[body] = clock()
        self.fake.push_update(token, update)
        return body

    async def wait_received(self, bodies: list[str], timeout: float) -> None:
        deadline = clock() + timeout
        while clock() < deadline and any(b not in self.received for b in bodies):
            await asyncio.sleep(0.01)

    def latency(self, bodies: list[str]) -> dict[str, Any]:
        values = [self.received[b] - self.pushed[b] for b in bodies if b in self.received]
        return {**percentiles(values), "lost": len(bodies) - len(values)}

    async def run(self) -> dict[str, Any]:
        a = self.args
        out: dict[str, Any] = {}
        say("raw limits: the fake alone (getMe) and a bare uvicorn hello-world")
        out["raw_fake_rps"] = await hammer(f"{self.fake.api_url}{WEBHOOK_TOKEN}/getMe", a.raw_seconds, 16)
        out["raw_hello_rps"] = await hammer(self.hello.url + "/", a.raw_seconds, 16)
        out["healthz_rps"] = await hammer(self.server.url + "/healthz", a.raw_seconds, 16)
        headers = await self.login()
        users = [self.fake.user(f"User {n}") for n in range(a.users)]

        say(f"webhook latency: {a.latency_updates} updates, one every {a.gap:g} s")
        bodies = []
        for _ in range(a.latency_updates):
            bodies.append(self.push(WEBHOOK_TOKEN, users))
            await asyncio.sleep(a.gap)
        await self.wait_received(bodies, a.timeout)
        out["webhook_latency_ms"] = self.latency(bodies)

        say(f"webhook ingest: {a.updates} updates queued at once")
        before = await asyncio.to_thread(stored_inbound, self.channels["webhook"])
        start = clock()
        bodies = [self.push(WEBHOOK_TOKEN, users) for _ in range(a.updates)]
        stored, deadline = 0, start + a.timeout + a.updates / 5
        while clock() < deadline:
            stored = await asyncio.to_thread(stored_inbound, self.channels["webhook"]) - before
            if stored >= a.updates:
                break
            await asyncio.sleep(0.05)
        elapsed = clock() - start
        out["ingest"] = {"updates": a.updates, "stored": stored, "seconds": round(elapsed, 2)}
        out["ingest"]["per_second"] = round(stored / elapsed, 1)
        await self.wait_received(bodies, 5)

        say(f"polling latency: {a.poll_updates} updates, one every {a.poll_gap:g} s")
        bodies = []
        for _ in range(a.poll_updates):
            bodies.append(self.push(POLLING_TOKEN, users))
            await asyncio.sleep(a.poll_gap)
        await self.wait_received(bodies, a.timeout + 10)
        out["polling_latency_ms"] = self.latency(bodies)

        conversations = sorted(self.conversations)
        say(f"outbound: {a.replies} agent replies over {len(conversations)} conversations")
        sent_before, calls_before = len(self.fake.sent), len(self.fake.calls)
        start = clock()

        async def reply(n: int) -> None:
            path = f"/api/v1/conversations/{conversations[n % len(conversations)]}/reply"
            body = json.dumps({"body": f"bench reply {n}"}).encode()
            response = await self.http.request("POST", path, headers=headers, body=body)
            if response.status != 201:
                self.errors.append(f"reply HTTP {response.status}")

        await asyncio.wait_for(asyncio.gather(*(reply(n) for n in range(a.replies))), a.timeout + a.replies / 5)
        posted = clock() - start
        deadline = clock() + a.timeout + a.replies / 5
        while len(self.fake.sent) - sent_before < a.replies and clock() < deadline:
            await asyncio.sleep(0.01)
        elapsed = clock() - start
        sent = len(self.fake.sent) - sent_before
        out["outbound"] = {
            "replies": a.replies,
            "posted_seconds": round(posted, 2),
            "sent": sent,
            "seconds": round(elapsed, 2),
            "per_second": round(sent / elapsed, 1),
            "fake_calls": dict(Counter(c.method for c in self.fake.calls[calls_before:])),
        }
        out["errors"] = self.errors
        await self.ws.close()
        await self.http.close()
        return out


def print_report(meta: dict[str, Any], r: dict[str, Any]) -> None:
    def row(label: str, lat: dict[str, Any], goal: float) -> None:
        cells = " ".join(f"{'-' if lat[q] is None else format(lat[q], '.0f'):>7}" for q in ("p50", "p95", "max"))
        verdict = "met" if lat["max"] is not None and lat["p95"] < goal and not lat["lost"] else "NOT MET"
        print(f"    {label:<34} {lat['n']:>4} {cells}   lost {lat['lost']}; goal p95 < {goal:g} ms: {verdict}")

    i, o = r["ingest"], r["outbound"]
    print()
    print(f"Smartchat Telegram benchmark  {meta['started']}  commit {meta['commit']}  ({meta['cpus']} cores)")
    print(f"  processes   {meta['desc']}")
    print(
        f"  raw limit   fake Bot API getMe {r['raw_fake_rps']:g} req/s; bare uvicorn hello-world "
        f"{r['raw_hello_rps']:g} req/s; Smartchat /healthz {r['healthz_rps']:g} req/s (16 keep-alive clients)"
    )
    print(
        f"  ingest      {i['stored']}/{i['updates']} webhook updates stored in {i['seconds']:g} s: "
        f"{i['per_second']:g} updates/s (one uvicorn process; the fake delivers one at a time)"
    )
    print("  latency, ms (fake queues update -> agent socket message.created)    n     p50     p95     max")
    row("webhook", r["webhook_latency_ms"], GOALS_MS["webhook"])
    row("polling", r["polling_latency_ms"], GOALS_MS["polling"])
    print(
        f"  outbound    {o['sent']}/{o['replies']} sendMessage calls reached the fake {o['seconds']:g} s after "
        f"the first reply POST: {o['per_second']:g} sends/s through one worker (POSTs took {o['posted_seconds']:g} s)"
    )
    print(
        "              Bot API calls the fake got meanwhile: "
        + ", ".join(f"{k} {v}" for k, v in o["fake_calls"].items())
    )
    print("  errors      " + (", ".join(r["errors"]) or "none"))
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--updates", type=int, default=200, help="webhook updates queued at once for the ingest rate")
    p.add_argument("--latency-updates", type=int, default=30, help="webhook updates sent one by one for latency")
    p.add_argument("--gap", type=float, default=0.2, help="seconds between webhook latency updates")
    p.add_argument("--poll-updates", type=int, default=15, help="updates for the polling latency")
    p.add_argument("--poll-gap", type=float, default=1.0, help="seconds between polling updates")
    p.add_argument("--replies", type=int, default=100, help="agent replies for the outbound rate")
    p.add_argument("--users", type=int, default=20, help="Telegram users (conversations) the updates come from")
    p.add_argument("--raw-seconds", type=float, default=2.0, help="seconds each raw-limit measurement runs")
    p.add_argument("--timeout", type=float, default=20.0, help="bound on every wait, in seconds")
    p.add_argument("--poller-threads", type=int, default=4, help="threads of the poller worker")
    p.add_argument("--database-url", default=DEFAULT_DATABASE_URL, help=f"recreated (default {DEFAULT_DATABASE_URL})")
    p.add_argument(
        "--redis-url", default=DEFAULT_REDIS_URL, help=f"broker and channel layer (default {DEFAULT_REDIS_URL})"
    )
    p.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE", help="extra environment")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    if min(args.updates, args.latency_updates, args.poll_updates, args.replies, args.users) < 1:
        p.error("counts must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    run_id = time.strftime("%Y%m%d-%H%M%S")
    log_dir = RESULTS_DIR / "logs" / f"telegram-{run_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "commit": git_commit(),
        "cpus": psutil.cpu_count(),
    }
    processes: list[Server] = []
    secret = secrets.token_urlsafe(50)
    fake = FakeTelegram(webhook_timeout=10.0)
    try:
        fake.start()
        for token, name in ((WEBHOOK_TOKEN, "bench_webhook_bot"), (POLLING_TOKEN, "bench_polling_bot")):
            fake.add_bot(token, username=name)
        os.environ.update({"SECRET_KEY": secret, "TELEGRAM_API_URL": fake.url})  # seeding encrypts with it
        db_name = args.database_url.rsplit("/", 1)[-1]
        say(f"recreating database {db_name}; fake Telegram on {fake.url}")
        recreate_database(args.database_url)
        clear_layer(args.redis_url)
        seeded = seed(SimpleNamespace(**vars(args), agents=1, agent_role="admin"), migrate=True)
        env = {**server_env(args, secret), "TELEGRAM_API_URL": fake.url}
        hello_port = free_port()
        processes.append(
            start_process(
                "hello",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--app-dir",
                    "bench",
                    "_hello_asgi:app",
                    "--port",
                    str(hello_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                    "--lifespan",
                    "off",
                ],
                env,
                log_dir,
            )
        )
        processes[-1].url = f"http://127.0.0.1:{hello_port}"
        say(f"starting uvicorn, the Celery worker, poller and beat; logs in {log_dir.relative_to(ROOT)}")
        (server,) = start_servers(1, env, log_dir)
        processes.append(server)
        env["PUBLIC_URL"] = server.url
        processes += start_workers(env, log_dir, args.poller_threads)
        wait_healthy(processes[0])
        channels = add_channels(seeded.emails[0], fake, server.url)
        meta["desc"] = (
            f"1 uvicorn {server.url}, Celery worker (solo), poller (threads x{args.poller_threads}), "
            f"beat; PostgreSQL {db_name}, Redis {args.redis_url}; fake {fake.url}"
        )
        bench = Bench(args, server, processes[0], fake, channels, seeded.emails[0], seeded.password)
        results = asyncio.run(bench.run())
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
        return 130
    finally:
        stop_servers(processes)
        fake.stop()
    print_report(meta, results)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lost = results["webhook_latency_ms"]["lost"] + results["polling_latency_ms"]["lost"]
    short = results["ingest"]["stored"] < args.updates or results["outbound"]["sent"] < args.replies
    return 1 if lost or short or results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
