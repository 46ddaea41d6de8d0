"""The raw loop: a bare uvicorn app doing the same work per message, driven by the same clients."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
from typing import Any

from _live_bench import Bench
from _live_common import (
    LAYER_PREFIX,
    RAW_LOOP_SECONDS,
    ROOT,
    SETUP_CONCURRENCY,
    WIDGET_ORIGIN,
    HttpClient,
    Seed,
    Server,
    _die_with_parent,
    clock,
    free_port,
    server_env,
    stop_servers,
    wait_healthy,
    ws_args,
)
from _live_measure import Agent, Visitor


class RawLoopBench(Bench):
    """The raw loop (bench/_raw_loop.py) driven by the same client code and arrivals, no replies."""

    def __init__(self, args: argparse.Namespace, server: Server) -> None:
        raw_args = argparse.Namespace(**{**vars(args), "reply_ratio": 0.0})
        names = [f"raw-agent-{index}" for index in range(args.agents)]
        super().__init__(raw_args, [server], Seed("raw", names, "", "raw loop"))

    async def connect_agent(self, agent: Agent) -> None:
        agent.ws = await self.open_socket(f"{agent.server.ws_url}/ws/inbox/", 30)
        hello = await self.hello(agent.ws, 30, "raw inbox socket")
        agent.ping_seconds = float(hello.get("ping_seconds") or 25)
        self.spawn(self.agent_reader(agent))

    async def connect_visitor(self, visitor: Visitor, gate: asyncio.Semaphore) -> None:
        async with gate:
            visitor.ws = await self.open_socket(f"{visitor.server.ws_url}/ws/widget/raw/", 60, WIDGET_ORIGIN)
            await visitor.ws.send(json.dumps({"type": "auth", "token": "raw"}))
            await self.hello(visitor.ws, 60, "raw widget socket")
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
