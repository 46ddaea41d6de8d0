"""The live chat bench's fan-out and idle-socket figures, and their raw limits on this machine.

- **Idle socket memory**: server RSS before and after opening K more inbox sockets that then
  sit idle (one agent's extra tabs), divided by K.
- **Raw limits**, measured in the same run: a bare uvicorn app (``bench/_hello_asgi.py``) that
  sends every frame it gets to all its open sockets. The same client library opens N sockets
  to it; one frame the size of an event goes out to all N (time until the last one has it,
  over ``ROUNDS`` rounds), and its RSS growth over K idle sockets.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

BENCH = Path(__file__).resolve().parent
ROUNDS = 100
SETTLE_SECONDS = 2.0
clock = time.monotonic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _open_many(url: str, count: int, **kwargs: Any) -> list[ClientConnection]:
    sockets: list[ClientConnection] = []
    for start in range(0, count, 25):
        batch = await asyncio.gather(
            *(
                connect(url, ping_interval=None, open_timeout=30, proxy=None, **kwargs)
                for _ in range(start, min(start + 25, count))
            )
        )
        sockets.extend(batch)
    return sockets


async def _close_all(sockets: list[ClientConnection]) -> None:
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def idle_inbox_sockets(ws_url: str, origin: str, cookie: str, count: int, rss) -> float | None:
    """KiB of server RSS per idle inbox socket: ``count`` more sockets opened, each past its hello."""
    before = rss()
    sockets = await _open_many(
        f"{ws_url}/ws/inbox/", count, origin=Origin(origin), additional_headers={"Cookie": cookie}
    )
    for ws in sockets:
        while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("type") != "hello":
            pass
    await asyncio.sleep(SETTLE_SECONDS)
    after = rss()
    await _close_all(sockets)
    if before is None or after is None:
        return None
    return round((after - before) / count / 1024, 1)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000, 1)


async def raw_limits(
    fanout_sockets: int, idle_sockets: int, ws_flags: list[str], frame_bytes: int = 1500
) -> dict[str, Any]:
    """The bare app's fan-out to ``fanout_sockets`` (p50/p99 ms) and its KiB per idle socket.

    ``ws_flags``: uvicorn's websocket flags, the product's (``ws_args()`` in live_chat.py), so
    that the bare socket and Smartchat's differ only by what Smartchat itself holds.
    """
    port = _free_port()
    argv = ["uvicorn", "_hello_asgi:app", "--port", str(port), "--log-level", "warning", "--lifespan", "off"]
    process = subprocess.Popen([sys.executable, "-m", *argv, "--no-proxy-headers", *ws_flags], cwd=BENCH)
    try:
        deadline = clock() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if clock() > deadline:
                    raise RuntimeError("the bare uvicorn app did not start") from None
                await asyncio.sleep(0.1)
        server = psutil.Process(process.pid)
        url = f"ws://127.0.0.1:{port}/"
        await _close_all(await _open_many(url, 25))  # warm: the first socket loads the protocol code
        before = server.memory_info().rss
        idle = await _open_many(url, idle_sockets)
        await asyncio.sleep(SETTLE_SECONDS)
        per_socket = round((server.memory_info().rss - before) / idle_sockets / 1024, 1)
        await _close_all(idle)

        sockets = await _open_many(url, fanout_sockets)
        times: list[float] = []
        payload = "x" * frame_bytes
        for number in range(ROUNDS):
            frame = json.dumps({"n": number, "pad": payload})
            start = clock()
            await sockets[number % len(sockets)].send(frame)
            await asyncio.gather(*(ws.recv() for ws in sockets))
            times.append(clock() - start)
        await _close_all(sockets)
        return {
            "fanout_sockets": fanout_sockets,
            "fanout_ms": {"p50": _percentile(times, 0.5), "p99": _percentile(times, 0.99), "n": len(times)},
            "idle_socket_kib": per_socket,
            "ws_flags": ws_flags,
        }
    finally:
        process.terminate()
        process.wait(10)
