"""Customers' files from a provider: pending when the message arrives, then ready, refused or failed.

``Depot`` is a channel kind of these tests' own whose ``fetch_file`` downloads over HTTP from
``FileServer``, a small server on 127.0.0.1 that answers each GET as scripted (the file, a 429
with Retry-After, a 5xx, a 404), streaming and never read past ``max_bytes``, as a real adapter
must. The state machine is driven by the same function the Celery task calls, and once end to
end by a real worker.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.storage import storages
from django.test import Client
from django.utils import timezone

from helpdesk.conversations import actions, adapters, tasks
from helpdesk.conversations.actions.fetching import fetch_inbound_file, sweep_pending_files
from helpdesk.conversations.adapters import Adapter, FetchedFile, FetchError
from helpdesk.conversations.inbound import ContactProfile, InboundAttachment, InboundMessage
from helpdesk.conversations.models import Attachment, Channel, Delivery, Message
from helpdesk.events.models import Event
from smartchat.celery import app
from tests.conftest import login
from tests.delivery_kit import drain
from tests.helpers import event_types, last_event_id
from tests.test_attachments import ELF, PNG


class FileServer:
    """Files on 127.0.0.1: GET /<name> answers the next scripted status for it, then the file."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.script: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.requests: list[str] = []
        self.sent_bytes = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append(name)
                scripted = server.script.get(name) or []
                status, headers = scripted.pop(0) if scripted else (200, {})
                if status == 200 and name not in server.files:
                    status = 404
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                data = server.files[name] if status == 200 else b""
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for start in range(0, len(data), 16 * 1024):
                        self.wfile.write(data[start : start + 16 * 1024])
                        server.sent_bytes += min(16 * 1024, len(data) - start)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading at its limit

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return self.base + name

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Depot(Adapter):
    """Downloads a file by its ``url`` in chunks, never past ``max_bytes``; classifies failures."""

    kind: str = "depot"
    label: str = "Depot"
    delivers: bool = True
    sent: list[str] = field(default_factory=list)

    def send(self, delivery) -> str:
        self.sent.append(delivery.message.body)
        return f"depot-{len(self.sent)}"

    def fetch_file(self, channel, source, *, max_bytes):
        try:
            with urllib.request.urlopen(source["url"], timeout=10) as response:
                declared = int(response.headers.get("Content-Length") or 0)
                if declared > max_bytes:
                    raise FetchError("too large", permanent=True, too_large=True)
                data = b""
                while chunk := response.read(16 * 1024):
                    data += chunk
                    if len(data) > max_bytes:
                        raise FetchError("too large", permanent=True, too_large=True)
                return FetchedFile(data=data, name=source["url"].rsplit("/", 1)[-1])
        except urllib.error.HTTPError as error:
            if error.code == 429:
                raise FetchError(
                    "rate limited", permanent=False, retry_after=float(error.headers["Retry-After"])
                ) from None
            raise FetchError(f"HTTP {error.code}", permanent=error.code < 500) from None


@pytest.fixture(autouse=True)
def _files_in_a_temporary_folder(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    storages._storages.pop("attachments", None)
    yield
    storages._storages.pop("attachments", None)


@pytest.fixture
def depot(monkeypatch) -> Depot:
    adapter = Depot()
    monkeypatch.setitem(adapters._registry, adapter.kind, adapter)
    return adapter


@pytest.fixture
def files():
    server = FileServer({"cat.png": PNG, "holiday.jpg": ELF, "big.bin": b"\x00" * 300_000})
    yield server
    server.close()


def arrive(cast, files: FileServer, *names: str, language: str = "", text: str = "", size=None) -> Message:
    channel = Channel.objects.get_or_create(company=cast.acme, kind="depot", name="Depot", team=cast.sales)[0]
    return actions.receive_inbound(
        channel=channel,
        message=InboundMessage(
            external_contact_id="c-1",
            text=text,
            profile=ContactProfile(name="Ann", language=language),
            attachments=[InboundAttachment(url=files.url(name), name=name, kind="doc", size=size) for name in names],
            external_id=f"m-{time.monotonic_ns()}",
        ),
    )


def test_a_pending_file_becomes_ready_and_the_thread_hears_of_it(cast, depot, files, client):
    message = arrive(cast, files, "cat.png", text="My cat")
    (pending,) = message.attachments.all()
    assert (message.body, pending.status, pending.source["url"]) == ("My cat", "pending", files.url("cat.png"))
    mark = last_event_id()
    assert fetch_inbound_file(pending.pk) is None
    pending.refresh_from_db()
    assert (pending.status, pending.content_type, pending.size, pending.error) == ("ready", "image/png", len(PNG), "")
    assert event_types(message.conversation, after=mark) == ["attachment.updated"]
    event = Event.objects.latest("id")
    (shown,) = event.payload["message"]["attachments"]
    assert (shown["status"], shown["image"]) == ("ready", True)
    login(client, cast.bob)
    served = client.get(shown["url"])
    assert served.status_code == 200 and b"".join(served.streaming_content) == PNG
    # A second run (the sweeper re-queued it) changes nothing.
    assert fetch_inbound_file(pending.pk) is None
    assert event_types(message.conversation, after=mark) == ["attachment.updated"]


@pytest.fixture
def russian(settings, tmp_path):
    """This branch's Russian (locale/ru/LC_MESSAGES/i9-files.po) until it is folded into django.po."""
    import polib

    po = Path(settings.BASE_DIR) / "locale" / "ru" / "LC_MESSAGES" / "i9-files.po"
    if po.exists():
        folder = tmp_path / "locale" / "ru" / "LC_MESSAGES"
        folder.mkdir(parents=True)
        polib.pofile(str(po)).save_as_mofile(str(folder / "django.mo"))
        settings.LOCALE_PATHS = [tmp_path / "locale", *settings.LOCALE_PATHS]


def test_a_file_declared_too_large_is_refused_unread_and_the_customer_told_in_their_language(
    cast, depot, files, settings, russian
):
    settings.ATTACHMENT_MAX_BYTES = 1024 * 1024
    message = arrive(cast, files, "big.bin", language="ru", size=5 * 1024 * 1024)
    (pending,) = message.attachments.all()
    mark = last_event_id()
    fetch_inbound_file(pending.pk)
    pending.refresh_from_db()
    assert (pending.status, pending.file.name) == ("refused", "")
    assert pending.error == "“big.bin” is too large: files can be at most 1.0 MB."
    assert files.requests == []  # never downloaded
    assert event_types(message.conversation, after=mark) == ["attachment.updated", "message.created"]
    notice = Message.objects.filter(conversation=message.conversation, automatic=True).get()
    assert notice.direction == "out"
    assert notice.body == "Файл «big.bin» слишком большой: размер файла — не больше 1.0 MB."  # the contact's language
    assert Delivery.objects.get(message=notice).status == "queued"  # it leaves like any reply


def test_a_download_over_the_limit_stops_at_the_limit_and_is_refused(cast, depot, files, settings):
    settings.ATTACHMENT_MAX_BYTES = 100_000
    message = arrive(cast, files, "big.bin")  # no size declared: the download proves it
    (pending,) = message.attachments.all()
    fetch_inbound_file(pending.pk)
    pending.refresh_from_db()
    assert pending.status == "refused" and "at most" in pending.error
    notice = Message.objects.get(conversation=message.conversation, automatic=True)
    assert notice.body == "“big.bin” is too large: files can be at most 98 KB."


def test_a_program_named_like_a_photo_is_refused_by_its_content(cast, depot, files):
    message = arrive(cast, files, "holiday.jpg")
    (pending,) = message.attachments.all()
    fetch_inbound_file(pending.pk)
    pending.refresh_from_db()
    assert (pending.status, pending.file.name) == ("refused", "")
    notice = Message.objects.get(conversation=message.conversation, automatic=True)
    assert notice.body == "“holiday.jpg” can't be sent: files of this type are not accepted."


def test_retryable_failures_wait_as_the_provider_asks_then_fail_after_the_last_attempt(cast, depot, files, settings):
    settings.ATTACHMENT_FETCH_MAX_ATTEMPTS = 3
    settings.ATTACHMENT_FETCH_RETRY_SECONDS = 2
    files.script["cat.png"] = [(429, {"Retry-After": "7"}), (503, {}), (503, {})]
    message = arrive(cast, files, "cat.png")
    (pending,) = message.attachments.all()
    assert fetch_inbound_file(pending.pk, attempt=1) == 7.0
    assert fetch_inbound_file(pending.pk, attempt=2) == 4.0  # backoff: 2 s doubled
    pending.refresh_from_db()
    assert pending.status == "pending"
    assert fetch_inbound_file(pending.pk, attempt=3) is None
    pending.refresh_from_db()
    assert (pending.status, pending.error) == ("failed", "HTTP 503")
    # A failed fetch is ours to worry about: the customer is not told.
    assert not Message.objects.filter(conversation=message.conversation, automatic=True).exists()


def test_a_file_the_provider_no_longer_has_fails_at_once(cast, depot, files):
    message = arrive(cast, files, "gone.png")
    (pending,) = message.attachments.all()
    assert fetch_inbound_file(pending.pk) is None
    pending.refresh_from_db()
    assert (pending.status, pending.error) == ("failed", "HTTP 404")


def test_a_blocked_contacts_file_is_fetched_quietly(cast, depot, files):
    first = arrive(cast, files, "holiday.jpg")
    actions.block_contact(first.conversation.contact, by=cast.alice, reason="spam")
    message = arrive(cast, files, "holiday.jpg")
    assert message.while_blocked
    mark = last_event_id()
    fetch_inbound_file(message.attachments.get().pk)
    assert message.attachments.get().status == "refused"
    assert event_types(after=mark) == []
    assert not Message.objects.filter(conversation=message.conversation, automatic=True).exists()


def test_files_past_the_per_message_limit_are_refused_without_fetching(cast, depot, files, settings):
    settings.ATTACHMENTS_PER_MESSAGE = 1
    message = arrive(cast, files, "cat.png", "holiday.jpg")
    assert [a.status for a in message.attachments.order_by("pk")] == ["pending", "refused"]


def test_the_sweeper_queues_again_files_whose_task_was_lost_and_gives_up_on_old_ones(cast, depot, files, settings):
    settings.DELIVERY_QUEUE = queue = f"test-files-{os.getpid()}-{time.monotonic_ns()}"
    fresh = arrive(cast, files, "cat.png").attachments.get()
    lost = arrive(cast, files, "cat.png").attachments.get()
    hopeless = arrive(cast, files, "cat.png").attachments.get()
    now = timezone.now()
    Attachment.objects.filter(pk=lost.pk).update(created_at=now - timezone.timedelta(seconds=900))
    Attachment.objects.filter(pk=hopeless.pk).update(created_at=now - timezone.timedelta(days=2))
    drain(queue)
    assert sweep_pending_files(now=now) == {"requeued": 1, "failed": 1}
    assert [(name, args) for name, args, _eta in drain(queue)] == [(tasks.fetch_attachment.name, [lost.pk])]
    assert [Attachment.objects.get(pk=a.pk).status for a in (fresh, lost, hopeless)] == ["pending", "pending", "failed"]


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_fetches_a_file_through_a_429_and_the_agent_opens_it(tcast, depot, files, settings):
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    settings.DELIVERY_QUEUE = queue = f"test-files-{os.getpid()}-{time.monotonic_ns()}"
    files.script["cat.png"] = [(429, {"Retry-After": "1"})]
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=20):
        message = arrive(tcast, files, "cat.png")  # committed: its fetch is queued after commit
        deadline = time.monotonic() + 30
        while (attachment := message.attachments.get()).status == "pending":
            assert time.monotonic() < deadline, "the worker never fetched the file"
            time.sleep(0.1)
    assert attachment.status == "ready"
    assert files.requests == ["cat.png", "cat.png"]  # the 429, then the file
    client = Client()
    login(client, tcast.bob)
    url = Event.objects.filter(type="attachment.updated").latest("id").payload["message"]["attachments"][0]["url"]
    assert client.get(url).status_code == 200
