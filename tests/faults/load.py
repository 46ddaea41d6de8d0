"""Live load for the fault tests: visitors on the widget socket, agents on the inbox socket.

The clients behave as the product's own JavaScript does:

- the widget (``static/widget/smartchat-widget.js``): the token in the first frame; on
  ``hello``, ``resume`` after the highest message id it has (or, while a paged resume is
  under way, after the last id of the last page), asking again from each page's last id
  while ``more`` is true; then every message not yet
  acknowledged is sent again with its same ``client_id``; a message pushed back before its
  ack confirms the pending one (``adoptPending``); messages are drawn once by id; a closed
  socket reconnects after ``min(30 s, 0.5 s * 2^attempts)`` with ±25 % jitter;
- the inbox (``static/app/inbox/socket.js``): ``resume`` after the last event id applied as
  soon as the socket opens; events applied once by id; a ``reset`` catch-up reloads the page;
  a closed socket reconnects after ``min(15 s, 1 s * 2^retry)`` with ±25 % jitter.

On top, what a fault test needs: a visitor whose send got an ``error`` frame sends it again
(same ``client_id``) after a short wait; agents answer visitors through the HTTP API and
send again only what surely was not stored (an error status, or a connection refused); and
every client notes when each message reached it, so the ledger can say what was heard, how
often, and how late.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets

from .harness import WIDGET_ORIGIN

# Seconds before sending again a message refused with an error frame.
RESEND_AFTER_ERROR = 0.5
CSRF = "f" * 16 + "a" * 16  # a CSRF secret as Django accepts it (32 letters), the same in cookie and header


@dataclass
class Sent:
    """A message its sender was told is stored: an ack frame, or 201 from the reply API."""

    message_id: int
    body: str
    kind: str  # "visitor" or "reply"
    visitor: int  # whose conversation
    acked_at: float


@dataclass
class Ledger:
    """What was sent, acknowledged, refused and heard, by whom and when (monotonic seconds)."""

    acked: dict[int, Sent] = field(default_factory=dict)
    # client -> message id -> when each application of it happened (once, ideally)
    heard: dict[str, dict[int, list[float]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    # client -> ("woken", conversation id) -> times
    notices: dict[str, dict[tuple, list[float]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    errors: Counter = field(default_factory=Counter)  # (client kind, code)
    retries: Counter = field(default_factory=Counter)  # client kind -> sends repeated
    reconnects: Counter = field(default_factory=Counter)  # client -> sockets opened after the first
    closes: Counter = field(default_factory=Counter)  # close codes seen
    duplicates_dropped: Counter = field(default_factory=Counter)  # client -> frames already applied (by id)
    resets: list[tuple[str, float]] = field(default_factory=list)
    silent: list[tuple[str, str]] = field(default_factory=list)
    ambiguous_replies: int = 0
    slowest_ack: float = 0.0  # seconds from a visitor's first send of a message to its ack
    refused_replies: Counter = field(default_factory=Counter)

    def ack(self, sent: Sent) -> None:
        self.acked.setdefault(sent.message_id, sent)

    def hear(self, client: str, message_id: int) -> None:
        self.heard[client][message_id].append(time.monotonic())


def jitter(delay: float) -> float:
    return delay * (0.75 + random.random() * 0.5)


class Visitor:
    """One visitor's widget: a session, one socket, one conversation; writes every ``every`` s."""

    def __init__(self, index: int, servers: list, public_key: str, ledger: Ledger, *, every: float, quiet=False):
        self.index, self.servers, self.key, self.ledger = index, servers, public_key, ledger
        self.name = f"visitor-{index}"
        self.every, self.quiet = every, quiet
        self.server = index % len(servers)
        self.token: str | None = None
        self.last_id = 0
        self.resume_from: int | None = None  # a paged resume under way: the last page's last id
        self.seen: set[int] = set()
        self.pending: dict[str, dict[str, Any]] = {}  # client_id -> body, last send
        self.ws = None
        self.generation = 0
        self.attempts = 0
        self.opened = 0
        self.sending = True
        self.written = 0
        self.live = asyncio.Event()

    async def _session(self) -> None:
        while self.token is None:
            server = self.servers[self.server]
            try:
                async with httpx.AsyncClient(timeout=10) as http:
                    answer = await http.post(
                        f"{server.url}/widget/v1/{self.key}/session", headers={"Origin": WIDGET_ORIGIN}, json={}
                    )
                if answer.status_code == 200:
                    self.token = answer.json()["token"]
                    return
                self.ledger.errors["session", answer.status_code] += 1
            except httpx.HTTPError:
                self.ledger.errors["session", "unreachable"] += 1
            self.server = (self.server + 1) % len(self.servers)
            await asyncio.sleep(jitter(0.5))

    async def run(self, stop: asyncio.Event) -> None:
        await self._session()
        sender = asyncio.create_task(self._write(stop))
        try:
            while not stop.is_set():
                server = self.servers[self.server]
                try:
                    async with websockets.connect(
                        f"{server.ws_url}/ws/widget/{self.key}/", origin=WIDGET_ORIGIN, open_timeout=5
                    ) as ws:
                        await ws.send(json.dumps({"type": "auth", "token": self.token}))
                        await self._listen(ws, stop)
                except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                    code = getattr(getattr(exc, "rcvd", None), "code", None)
                    self.ledger.closes["widget", code or type(exc).__name__] += 1
                finally:
                    self.ws = None
                    self.live.clear()
                if stop.is_set():
                    break
                # As the widget: back off, then try again (here: the next server, as a balancer would).
                delay = jitter(min(30.0, 0.5 * 2**self.attempts))
                self.attempts += 1
                if len(self.servers) > 1:
                    self.server = (self.server + 1) % len(self.servers)
                await asyncio.sleep(delay)
        finally:
            sender.cancel()

    async def _listen(self, ws, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            data = json.loads(raw)
            kind = data.get("type")
            if kind == "hello":
                self.attempts = 0
                self.opened += 1
                if self.opened > 1:
                    self.ledger.reconnects[self.name] += 1
                self.ws, self.generation = ws, self.generation + 1
                after = self.last_id if self.resume_from is None else self.resume_from
                await ws.send(json.dumps({"type": "resume", "after": after}))
                for client_id in list(self.pending):
                    if self.pending[client_id]["at"]:  # sent before, on a socket now gone
                        self.ledger.retries["visitor"] += 1
                    await self._transmit(client_id)
                self.live.set()
            elif kind == "message":
                self._draw(data["message"])
            elif kind == "history":
                for message in data["messages"]:
                    self._draw(message)
                if data.get("more") and data["messages"]:  # nextPage in the widget
                    self.resume_from = data["messages"][-1]["id"]
                    await ws.send(json.dumps({"type": "resume", "after": self.resume_from}))
                else:
                    self.resume_from = None
            elif kind == "ack":
                self._acknowledge(data["client_id"], data["message_id"])
            elif kind == "error":
                await self._refused(data)
        await ws.close()

    def _draw(self, message: dict[str, Any]) -> None:
        if message["id"] in self.seen:
            self.ledger.duplicates_dropped[self.name] += 1
            return
        if message["from"] == "visitor":  # adoptPending: our own message, pushed before its ack
            match = next((cid for cid, p in self.pending.items() if p["body"] == message["body"]), None)
            if match is not None:
                self._acknowledge(match, message["id"])
        self.seen.add(message["id"])
        self.last_id = max(self.last_id, message["id"])
        self.ledger.hear(self.name, message["id"])

    def _acknowledge(self, client_id: str, message_id: int) -> None:
        entry = self.pending.pop(client_id, None)
        if entry is None:
            return
        self.last_id = max(self.last_id, message_id)
        if entry.get("first"):
            self.ledger.slowest_ack = max(self.ledger.slowest_ack, time.monotonic() - entry["first"])
        self.ledger.ack(Sent(message_id, entry["body"], "visitor", self.index, time.monotonic()))

    async def _refused(self, data: dict[str, Any]) -> None:
        self.ledger.errors["visitor", data.get("code")] += 1
        client_id = data.get("client_id")
        if client_id in self.pending:
            # "unavailable": the widget sends it again after retry_after; any other refusal it
            # shows failed ("tap to retry") and the visitor taps. Either way the same client_id.
            self.pending[client_id]["at"] = 0.0  # answered: not silent
            asyncio.get_running_loop().call_later(
                data.get("retry_after") or RESEND_AFTER_ERROR, lambda: asyncio.ensure_future(self._again(client_id))
            )

    async def _again(self, client_id: str) -> None:
        if client_id in self.pending:
            self.ledger.retries["visitor"] += 1
            await self._transmit(client_id)

    async def _transmit(self, client_id: str) -> None:
        entry = self.pending.get(client_id)
        if entry is None or self.ws is None:
            return
        entry["at"], entry["generation"] = time.monotonic(), self.generation
        entry.setdefault("first", entry["at"])
        try:
            await self.ws.send(json.dumps({"type": "message", "body": entry["body"], "client_id": client_id}))
        except websockets.WebSocketException:
            pass  # the socket is going; the next hello sends it again

    async def _write(self, stop: asyncio.Event) -> None:
        await asyncio.sleep(random.random() * self.every)
        while not stop.is_set():
            if self.sending and not self.pending and not (self.quiet and self.written):
                self.written += 1
                client_id = uuid.uuid4().hex
                self.pending[client_id] = {"body": f"v{self.index} #{self.written}", "at": 0.0, "generation": 0}
                await self._transmit(client_id)
            await asyncio.sleep(self.every)

    def unanswered(self) -> list[str]:
        """Sends on the socket still open that got neither an ack nor an error: silently dropped."""
        return [p["body"] for p in self.pending.values() if p["at"] and p["generation"] == self.generation and self.ws]


class Agent:
    """One employee's inbox tab; ``replies``: answers every ``reply_every``-th visitor message."""

    def __init__(self, name: str, sessionid: str, servers: list, ledger: Ledger, *, replies=False, reply_every=3):
        self.name, self.servers, self.ledger = name, servers, ledger
        self.cookie = f"sessionid={sessionid}; csrftoken={CSRF}"
        self.server = 0
        self.replies, self.reply_every = replies, reply_every
        self.applied: set[int] = set()
        self.last_event_id = 0
        self.retry = 0
        self.opened = 0
        self.sending = True
        self.tasks: set[asyncio.Task] = set()
        self.live = asyncio.Event()

    def place(self, server: int) -> Agent:
        self.server = server
        return self

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            server = self.servers[self.server]
            try:
                async with websockets.connect(
                    f"{server.ws_url}/ws/inbox/",
                    origin=server.url,
                    additional_headers={"Cookie": self.cookie},
                    open_timeout=5,
                ) as ws:
                    self.retry = 0  # as socket.js: reset on open
                    self.opened += 1
                    if self.opened > 1:
                        self.ledger.reconnects[self.name] += 1
                    await ws.send(json.dumps({"type": "resume", "after": self.last_event_id}))
                    await self._listen(ws, stop)
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                code = getattr(getattr(exc, "rcvd", None), "code", None)
                self.ledger.closes["inbox", code or type(exc).__name__] += 1
            self.live.clear()
            if stop.is_set():
                break
            delay = jitter(min(15.0, 1.0 * 2**self.retry))
            self.retry += 1
            if len(self.servers) > 1:
                self.server = (self.server + 1) % len(self.servers)
            await asyncio.sleep(delay)
        for task in list(self.tasks):
            task.cancel()

    async def _listen(self, ws, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            data = json.loads(raw)
            kind = data.get("type")
            if kind == "hello":
                self.live.set()
            elif kind == "event":
                self._apply(data["event"])
            elif kind == "position":  # as socket.js: resume from how far the log is
                self.last_event_id = max(self.last_event_id, data["event_id"])
            elif kind == "catchup":
                if data["reset"]:
                    self.ledger.resets.append((self.name, time.monotonic()))
                for event in data["events"]:
                    self._apply(event)
            elif kind == "error":
                self.ledger.errors["inbox", data.get("code")] += 1
        await ws.close()

    def _apply(self, event: dict[str, Any]) -> None:
        if event["id"] in self.applied:
            self.ledger.duplicates_dropped[self.name] += 1
            return
        self.applied.add(event["id"])
        self.last_event_id = max(self.last_event_id, event["id"])
        if event["type"] == "conversation.woken":
            self.ledger.notices[self.name]["woken", event["conversation_id"]].append(time.monotonic())
        if event["type"] != "message.created":
            return
        message = event["payload"]["message"]
        self.ledger.hear(self.name, message["id"])
        body = message.get("body") or ""
        if (
            self.replies
            and self.sending
            and message.get("direction") == "in"
            and body.startswith("v")
            and message["id"] % self.reply_every == 0
        ):
            visitor = int(body[1:].split(" ", 1)[0])
            task = asyncio.create_task(self._reply(event["conversation_id"], visitor, message["id"]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _reply(self, conversation_id: int, visitor: int, to: int) -> None:
        body = f"r{visitor} to {to} by {self.name}"
        delay = 0.5
        while True:
            server = self.servers[self.server]
            try:
                async with httpx.AsyncClient(timeout=10) as http:
                    answer = await http.post(
                        f"{server.url}/api/v1/conversations/{conversation_id}/reply",
                        json={"body": body},
                        headers={
                            "Cookie": self.cookie,
                            "X-CSRFToken": CSRF,
                            "Origin": server.url,
                            "Referer": f"{server.url}/inbox/",
                        },
                    )
            except httpx.ConnectError:
                self.ledger.errors["reply", "unreachable"] += 1  # nothing sent: surely not stored
            except httpx.HTTPError:
                self.ledger.ambiguous_replies += 1  # sent, no answer: the agent can't know; no resend
                return
            else:
                if answer.status_code == 201:
                    self.ledger.ack(Sent(answer.json()["id"], body, "reply", visitor, time.monotonic()))
                    return
                if answer.status_code < 500:
                    self.ledger.refused_replies[answer.status_code, answer.json()["error"]["code"]] += 1
                    return
                self.ledger.errors["reply", answer.status_code] += 1
            self.ledger.retries["reply"] += 1
            await asyncio.sleep(jitter(delay))
            delay = min(delay * 2, 4.0)  # then to the server the tab's socket is on by then
