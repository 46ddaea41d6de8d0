"""A channel kind of the tests' own, and what its tests share.

``Pigeon`` is a real adapter behind the real registry: ``send`` does what the test scripted
(raise a ``DeliveryError``, or succeed). ``Courier`` talks HTTP to ``PostOffice``, a tiny
server on 127.0.0.1 that answers each POST as scripted (200 with an id, 429 with
Retry-After, 500, 403), so a real worker's sends cross a real socket.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from helpdesk.accounts.models import Company, Team
from helpdesk.conversations import actions
from helpdesk.conversations.adapters import Adapter, DeliveryError
from helpdesk.conversations.models import Channel, Conversation
from smartchat.celery import app


@dataclass
class Pigeon(Adapter):
    kind: str = "pigeon"
    label: str = "Pigeon post"
    delivers: bool = True
    # What each next send does: an exception to raise, or None to succeed.
    script: list[Exception | None] = field(default_factory=list)
    # Every send that succeeded: (delivery id, idempotency key, text).
    sent: list[tuple[int, Any, str]] = field(default_factory=list)
    calls: int = 0

    def send(self, delivery) -> str:
        self.calls += 1
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append((delivery.pk, delivery.idempotency_key, delivery.message.body))
        return f"pigeon-{len(self.sent)}"


class PostOffice:
    """A provider on 127.0.0.1: each POST gets the next scripted answer (then 200 with an id)."""

    def __init__(self, script: list[tuple[int, dict]] | None = None):
        self.script = list(script or [])
        self.received: list[dict] = []
        self.lock = threading.Lock()
        office = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with office.lock:
                    status, answer = office.script.pop(0) if office.script else (200, {})
                    office.received.append({**body, "status": status})
                    if status == 200:
                        answer = {"message_id": f"po-{len(office.received)}", **answer}
                data = json.dumps(answer).encode()
                self.send_response(status)
                if "retry_after" in answer:
                    self.send_header("Retry-After", str(answer["retry_after"]))
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PostOffice:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[dict]:
        """Requests answered 200: what the customer got."""
        return [r for r in self.received if r["status"] == 200]


@dataclass
class Courier(Adapter):
    """Sends over HTTP to a PostOffice and classifies its answers as a real adapter would."""

    kind: str = "courier"
    label: str = "Courier"
    delivers: bool = True
    url: str = ""

    def send(self, delivery) -> str:
        payload = json.dumps({"key": delivery.idempotency_key, "text": delivery.message.body}).encode()
        request = urllib.request.Request(self.url, data=payload, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())["message_id"]
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read() or b"{}")
            words = answer.get("description", f"HTTP {error.code}")
            if error.code == 429:
                raise DeliveryError(words, permanent=False, retry_after=float(error.headers["Retry-After"])) from None
            raise DeliveryError(words, permanent=error.code < 500) from None


def channel_of(adapter: Adapter, company: Company, team: Team) -> Channel:
    return Channel.objects.create(company=company, kind=adapter.kind, name=str(adapter.label), team=team)


def conversation_on(channel: Channel, who: str = "chat-1") -> Conversation:
    return actions.receive_message(
        channel=channel, external_contact_id=who, body="Where is my parcel?", external_id=f"{who}:1"
    ).conversation


def drain(queue: str) -> list[tuple[str, list, str | None]]:
    """Take every task waiting on this broker queue: (task name, args, eta)."""
    out = []
    with app.connection_for_read() as connection:
        simple = connection.SimpleQueue(queue)
        try:
            while True:
                try:
                    message = simple.get(block=False)
                except simple.Empty:
                    break
                out.append((message.headers["task"], message.payload[0], message.headers.get("eta")))
                message.ack()
        finally:
            simple.close()
    return out
