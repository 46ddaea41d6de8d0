"""One fault test's world: the private services, the product's processes, the load, the verdict."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import websockets

from .harness import WIDGET_ORIGIN, PrivatePostgres, PrivateRedis, Web, Worker, product_env, seed
from .load import CSRF, Agent, Ledger, Visitor

# No socket may stay deaf longer than this after the service is back (issue 11).
DEAF_LIMIT = 5.0
# The retained window for inbox catch-up, small enough that the stale resume below falls out of
# it within a test, large enough that a socket away for a few seconds of this load stays in it.
CATCHUP_LIMIT = 100
CATCHUP_OVERLAP = 10
# Who must hear each visitor's conversation: the admin and the Sales agent; Erin (Support) never.
AUDIENCE = ("alice", "bob")
OUTSIDER = "erin"
# Every test's figures, for the run's summary.
FIGURES: list[str] = []


class World:
    def __init__(self, postgres: PrivatePostgres, template: str, *, webs: int = 1, worker: bool = False) -> None:
        self.postgres = postgres
        self.database = f"faults_{uuid.uuid4().hex[:10]}"
        postgres.sql(f'CREATE DATABASE "{self.database}" TEMPLATE "{template}"')
        self.redis = PrivateRedis()
        self.redis.start()
        self.dir = Path(tempfile.mkdtemp(prefix="smartchat-faults-"))
        self.env = product_env(
            postgres.url(self.database),
            self.redis.url,
            self.dir,
            EVENT_CATCHUP_LIMIT=str(CATCHUP_LIMIT),
            EVENT_CATCHUP_OVERLAP=str(CATCHUP_OVERLAP),
        )
        self.cast = seed(self.env)
        self.webs = [Web(f"web{i + 1}", self.env, self.dir) for i in range(webs)]
        for web in self.webs:
            web.start()
        self.workers: list[Worker] = []
        if worker:
            self.start_worker()
        self.ledger = Ledger()
        self.visitors: list[Visitor] = []
        self.agents: dict[str, Agent] = {}
        self.back_at: float | None = None  # when the service came back (monotonic)
        self.down_at: float | None = None
        self.figures: dict = {}
        self.unanswered: list[tuple[str, str]] = []

    def start_worker(self) -> Worker:
        worker = Worker(f"worker{len(self.workers) + 1}", self.env, self.dir)
        worker.start().wait_ready()
        self.workers.append(worker)
        return worker

    def close(self, *, keep_logs: bool = False) -> None:
        for process in [*self.webs, *self.workers]:
            process.stop()
        self.redis.stop()
        if not keep_logs:
            shutil.rmtree(self.dir, ignore_errors=True)
        try:
            self.postgres.sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except psycopg.Error:
            pass

    def logs(self) -> str:
        return "\n".join(process.tail() for process in [*self.webs, *self.workers])

    # --- Load -------------------------------------------------------------------------------

    def clients(self, *, visitors: int = 6, every: float = 0.5, quiet: int = 0) -> None:
        key = self.cast["public_key"]
        self.visitors = [Visitor(i, self.webs, key, self.ledger, every=every) for i in range(visitors)]
        self.visitors += [
            Visitor(visitors + i, self.webs, key, self.ledger, every=every, quiet=True) for i in range(quiet)
        ]
        agents = self.cast["agents"]
        self.agents = {
            name: Agent(name, agents[name]["sessionid"], self.webs, self.ledger, replies=name in AUDIENCE).place(
                index % len(self.webs)
            )
            for index, name in enumerate(["alice", "bob", "erin"])
        }

    async def run(self, fault: Callable[[World], Awaitable[None]], *, warmup: float = 4, after: float = 8) -> None:
        """Load for ``warmup`` s, the fault, load for ``after`` s once it is over, then a drain."""
        stop = asyncio.Event()
        tasks = [asyncio.create_task(agent.run(stop)) for agent in self.agents.values()]
        await asyncio.wait_for(asyncio.gather(*(a.live.wait() for a in self.agents.values())), 20)
        tasks += [asyncio.create_task(visitor.run(stop)) for visitor in self.visitors]
        await asyncio.sleep(warmup)
        await fault(self)
        assert self.back_at is not None, "the fault must say when the service was back"
        await asyncio.sleep(after)
        for client in [*self.visitors, *self.agents.values()]:
            client.sending = False
        await self._drain(deadline=time.monotonic() + 15)
        self.unanswered = [(v.name, body) for v in self.visitors for body in v.unanswered()]
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain(self, deadline: float) -> None:
        """Until every send is acknowledged and every acknowledged message heard by its audience."""
        while time.monotonic() < deadline:
            if not any(v.pending for v in self.visitors) and not self._unheard():
                agents_busy = any(a.tasks for a in self.agents.values())
                if not agents_busy:
                    await asyncio.sleep(1)  # late duplicates, if any, have a moment to show
                    return
            await asyncio.sleep(0.2)

    def _audience(self, sent) -> list[str]:
        return [*AUDIENCE, f"visitor-{sent.visitor}"]

    def _unheard(self) -> list[tuple[str, int]]:
        heard = self.ledger.heard
        return [
            (client, m)
            for m, sent in list(self.ledger.acked.items())
            for client in self._audience(sent)
            if not heard[client].get(m)
        ]

    # --- Verdict ------------------------------------------------------------------------------

    async def stale_resume(self) -> dict:
        """A tab away for longer than the retained window resumes from the first event: reload.

        On a slow machine the load may have written fewer events than the window holds: a
        visitor then writes more, until the first event has fallen out of it.
        """
        web = next(w for w in self.webs if w.alive())
        while (written := self.events_written()) <= CATCHUP_LIMIT + 1:
            await self._write_more(web, CATCHUP_LIMIT + 2 - written)
        async with websockets.connect(
            f"{web.ws_url}/ws/inbox/",
            origin=web.url,
            additional_headers={"Cookie": f"sessionid={self.cast['agents']['alice']['sessionid']}; csrftoken={CSRF}"},
        ) as ws:
            await ws.send(json.dumps({"type": "resume", "after": self.first_event_id}))
            while True:
                data = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if data["type"] == "catchup":
                    return data

    def verdict(self, stale: dict) -> list[str]:
        """Every property of issue 11's "Faults", as a list of what failed (empty: all hold)."""
        ledger, problems = self.ledger, []
        heard = ledger.heard
        acked = ledger.acked
        # 1. Every acknowledged message reached every socket allowed to see it exactly once.
        missing = [(c, m) for m, s in acked.items() for c in self._audience(s) if not heard[c].get(m)]
        twice = [(c, m) for m, s in acked.items() for c in self._audience(s) if len(heard[c].get(m, ())) > 1]
        leaked = [m for m in acked if heard[OUTSIDER].get(m)]
        if missing:
            by_client = {}
            for client, _m in missing:
                by_client[client] = by_client.get(client, 0) + 1
            # When each was acknowledged, against the service's return (negative: before it).
            when = sorted({round(acked[m].acked_at - self.back_at, 1) for _c, m in missing})
            problems.append(
                f"{len(missing)} acknowledged (socket, message) pairs never arrived: {by_client}; "
                f"acknowledged at {when} s from the service's return; "
                f"kinds {dict(Counter(acked[m].kind for _c, m in missing))}"
            )
        if twice:
            problems.append(f"{len(twice)} messages applied twice: {twice[:5]}")
        if leaked:
            problems.append(f"{len(leaked)} messages reached Erin, who may not see them")
        # 2. Nothing acknowledged is missing from the database.
        with psycopg.connect(self.postgres.url(self.database)) as conn:
            stored = dict(
                conn.execute("SELECT id, body FROM conversations_message WHERE id = ANY(%s)", [list(acked)]).fetchall()
            )
            events = conn.execute("SELECT count(*) FROM events_event").fetchone()[0]
        lost = [m for m, s in acked.items() if stored.get(m) != s.body]
        if lost:
            problems.append(f"{len(lost)} acknowledged messages are not in the database: {lost[:5]}")
        # 3. No socket deaf more than DEAF_LIMIT s after the service is back.
        deaf = self.deafness()
        worst = max(deaf.values(), default=0.0)
        if worst > DEAF_LIMIT:
            problems.append(
                f"a socket stayed deaf {worst:.1f} s after the service was back (limit {DEAF_LIMIT} s): "
                + ", ".join(f"{c} {d:.1f} s" for c, d in sorted(deaf.items()) if d > DEAF_LIMIT)
            )
        # 4. Sends that could not be stored: refused with an error, resent, never dropped silently.
        unsent = sum(len(v.pending) for v in self.visitors)
        # Collected before the clients stopped (run): what an open socket never answered.
        ledger.silent.extend(self.unanswered)
        if ledger.silent:
            problems.append(f"{len(ledger.silent)} sends got neither an ack nor an error: {ledger.silent[:5]}")
        if unsent:
            problems.append(f"{unsent} visitor sends were still unacknowledged at the end")
        # 5. A resume point older than the retained window is told to reload.
        if events <= CATCHUP_LIMIT:
            problems.append(f"only {events} events written: the stale resume can't fall out of the window")
        if not stale.get("reset"):
            problems.append("a resume point older than the retained window was not told to reload")
        # Sockets away only for the fault stay within the window: no page had to reload.
        if ledger.resets:
            problems.append(f"{len(ledger.resets)} sockets were told to reload after a short gap: {ledger.resets}")
        self.figures.update(
            {
                "acked visitor messages": sum(s.kind == "visitor" for s in acked.values()),
                "acked replies": sum(s.kind == "reply" for s in acked.values()),
                "events written": events,
                "errors (who, code)": dict(ledger.errors),
                "retries": dict(ledger.retries),
                "reconnects": dict(ledger.reconnects),
                "closes": {str(k): v for k, v in ledger.closes.items()},
                "duplicates dropped by id": dict(ledger.duplicates_dropped),
                "ambiguous replies (no answer)": ledger.ambiguous_replies,
                "refused replies": {str(k): v for k, v in ledger.refused_replies.items()},
                "missing pairs": len(missing),
                "applied twice": len(twice),
                "longest deaf after back, s": {c: round(d, 2) for c, d in sorted(deaf.items())},
                "silent drops": len(ledger.silent),
                "slowest visitor ack (first send to ack), s": round(ledger.slowest_ack, 2),
                "stale resume answered reset": bool(stale.get("reset")),
            }
        )
        return problems

    def deafness(self) -> dict[str, float]:
        """Per socket: the longest an acknowledged message it should hear waited after the service was back.

        A message acknowledged at ``a`` and heard at ``h`` kept the socket deaf from
        ``max(a, back)`` to ``h``; one never heard counts until now.
        """
        now = time.monotonic()
        deaf: dict[str, float] = {}
        for m, sent in self.ledger.acked.items():
            for client in self._audience(sent):
                times = self.ledger.heard[client].get(m)
                arrived = times[0] if times else now
                deaf[client] = max(deaf.get(client, 0.0), arrived - max(sent.acked_at, self.back_at))
        return deaf

    def events_written(self) -> int:
        with psycopg.connect(self.postgres.url(self.database)) as conn:
            return conn.execute("SELECT count(*) FROM events_event").fetchone()[0]

    async def _write_more(self, web: Web, count: int) -> None:
        extra = Visitor(10_000, [web], self.cast["public_key"], Ledger(), every=0)
        await extra._session()
        async with websockets.connect(f"{web.ws_url}/ws/widget/{extra.key}/", origin=WIDGET_ORIGIN) as ws:
            await ws.send(json.dumps({"type": "auth", "token": extra.token}))
            for index in range(count):
                await ws.send(json.dumps({"type": "message", "body": f"more {index}", "client_id": uuid.uuid4().hex}))
                while json.loads(await asyncio.wait_for(ws.recv(), 20))["type"] != "ack":
                    pass

    def first_event(self) -> None:
        with psycopg.connect(self.postgres.url(self.database)) as conn:
            self.first_event_id = conn.execute("SELECT coalesce(min(id), 0) FROM events_event").fetchone()[0]

    def report(self, title: str) -> str:
        lines = [f"\n=== faults: {title} (shared 2-core machine) ==="]
        lines += [f"  {name}: {value}" for name, value in self.figures.items()]
        text = "\n".join(lines)
        FIGURES.append(text)  # shown at the end of the run, passed or failed (conftest)
        print(text)
        return text
