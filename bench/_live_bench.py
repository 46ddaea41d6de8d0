"""The live chat bench's driver: connects the sockets, drives the load, collects every message's fate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import secrets
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urlsplit

import psutil
from _fanout import idle_inbox_sockets, raw_limits
from _live_common import (
    AGENT_SETUP_CONCURRENCY,
    PROGRESS_SECONDS,
    SETUP_CONCURRENCY,
    TOKEN_RE,
    VISITOR_PING_SECONDS,
    WIDGET_ORIGIN,
    HttpClient,
    Seed,
    Server,
    clock,
    say,
    server_env,
    ws_args,
)
from _live_measure import Agent, CpuSampler, Record, Visitor, describe_close, named_processes, percentiles
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State
from websockets.typing import Origin


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

    @staticmethod
    async def open_socket(url: str, timeout: float, origin: str | None = None, **extra: Any) -> Any:
        """A client websocket as the browser opens it: no proxy, no protocol pings (the app
        pings, like inbox.js and the widget)."""
        return await connect(
            url,
            origin=Origin(origin) if origin else None,
            proxy=None,
            ping_interval=None,
            open_timeout=timeout,
            close_timeout=2,
            **extra,
        )

    @staticmethod
    async def hello(ws: Any, timeout: float, what: str) -> dict[str, Any]:
        """The socket's first frame, which must be its hello."""
        hello = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if hello.get("type") != "hello":
            raise RuntimeError(f"{what} said {hello!r} instead of hello")
        return hello

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
        agent.ws = await self.open_socket(
            f"{agent.server.ws_url}/ws/inbox/", 30, origin, additional_headers={"Cookie": cookie}
        )
        hello = await self.hello(agent.ws, 30, "inbox socket")
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
            visitor.ws = await self.open_socket(f"{visitor.server.ws_url}/ws/widget/{key}/", 60, WIDGET_ORIGIN)
            # As the widget does: the token in the first frame, never in the URL.
            await visitor.ws.send(json.dumps({"type": "auth", "token": token}))
            await self.hello(visitor.ws, 60, "widget socket")
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
            from _live_raw import raw_loop  # it drives a Bench of its own: imported when used

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
