"""What the live chat bench keeps per socket and per message, and how it reads figures and CPU."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import psutil
from _live_common import HttpClient, Server, clock
from websockets.asyncio.client import ClientConnection

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
