"""Files through Telegram end to end, every part real and together.

The real web server (uvicorn on the test database), a real Celery worker on the broker, the
fake Telegram of ``tests/fakes/telegram.py`` spoken to by python-telegram-bot, and agents who
use only the HTTP API with their personal keys:

- a customer's photo with a caption comes in by the webhook (Telegram POSTs it to our view)
  or by polling (``polling.poll``); the worker fetches it through getFile and the file server
  into storage; the agent's thread shows the caption and a ready image whose link serves the
  same bytes to the agent and nothing to an agent who may not see the conversation;
- the agent uploads a PDF and a PNG and answers with text; the worker sends them as the
  outbound plan says (the text as the first file's caption), and the delivery is ``sent``;
- the same through VK's Callback API: a photo in, a PDF out through the upload servers.
"""

from __future__ import annotations

import io
import os
import time

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.storage import storages
from PIL import Image

from helpdesk.accounts import actions as admin_actions
from helpdesk.conversations.models import Attachment, Channel
from integrations.telegram import polling
from smartchat.celery import app
from tests.delivery_kit import drain
from tests.fakes.telegram import fake_telegram as fake_telegram
from tests.fakes.vk import vk_fake as vk_fake
from tests.live import LiveServer

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "123456789:AAEhBOweik9ai2o4sbVX-wQzSOMESECRETTAIL"
POLLED_TOKEN = "987654321:AAF-polled-bot-secret-tail-0123456789"
PDF = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 200 + b"%%EOF\n"


def image(kind: str, size: tuple[int, int], color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, kind)
    return out.getvalue()


def wait_until(predicate, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while not (found := predicate()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return found


@pytest.fixture
def storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    storages._storages.pop("attachments", None)
    yield tmp_path
    storages._storages.pop("attachments", None)


@pytest.fixture
def server(transactional_db, settings):
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    live = LiveServer().start()
    settings.PUBLIC_URL = live.url  # the webhook's address given to Telegram
    yield live
    live.stop()


@pytest.fixture
def fake(fake_telegram, settings):
    settings.TELEGRAM_API_URL = fake_telegram.url
    fake_telegram.add_bot(TOKEN, username="acme_support_bot")
    fake_telegram.add_bot(POLLED_TOKEN, username="acme_polled_bot")
    return fake_telegram


@pytest.fixture
def worker(server, storage, settings):
    settings.DELIVERY_QUEUE = queue = f"test-tg-e2e-{os.getpid()}-{time.monotonic_ns()}"
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=20):
        yield
    drain(queue)


class Api:
    """An employee's HTTP client on the live server, by their personal API key."""

    def __init__(self, server: LiveServer, employee) -> None:
        _, key = admin_actions.create_api_token(by=employee, name="e2e")
        self.http = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=20)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.http.post(path, **kwargs)

    def thread(self, conversation_id: int) -> list[dict]:
        response = self.get(f"/api/v1/conversations/{conversation_id}/messages/")
        assert response.status_code == 200, response.text
        return response.json()["results"]


def new_channel(alice: Api, team, token: str, mode: str) -> Channel:
    body = {"kind": "telegram", "name": f"Bot ({mode})", "team": team.pk, "bot_token": token, "mode": mode}
    response = alice.post("/api/v1/channels/", json=body)
    assert response.status_code == 201, response.text
    return Channel.objects.get(pk=response.json()["id"])


def the_conversation_of(api: Api, channel: Channel) -> int:
    def found():
        query = {"view": "all", "status": "open", "channel_id": channel.pk}
        listed = api.get("/api/v1/conversations/", params=query).json()["results"]
        return [c["id"] for c in listed if c["channel_id"] == channel.pk]

    (conversation_id,) = wait_until(found, "the customer's conversation never showed up")
    return conversation_id


def ready_photo(api: Api, conversation_id: int) -> tuple[dict, dict]:
    """The customer's message and its one file, once the worker has fetched it."""

    def fetched():
        (message,) = [m for m in api.thread(conversation_id) if m["direction"] == "in"]
        (attachment,) = message["attachments"]
        return (message, attachment) if attachment["status"] != "pending" else None

    return wait_until(fetched, "the worker never fetched the customer's photo")


def customer_photo_reaches_the_agent(cast, fake, channel, token, push) -> tuple[Api, int, dict]:
    """The customer sends a captioned photo (``push`` brings it in); Bob sees it, Erin may not."""
    photo = image("JPEG", (1280, 960))
    ann = fake.user("Ann", username="ann")
    push(fake.photo_update(token, ann, photo, caption="Is this the one?"))
    bob, erin = Api(cast.server, cast.bob), Api(cast.server, cast.erin)
    conversation_id = the_conversation_of(bob, channel)
    message, attachment = ready_photo(bob, conversation_id)
    assert message["body"] == "Is this the one?"
    assert (attachment["status"], attachment["image"], attachment["content_type"]) == ("ready", True, "image/jpeg")
    assert attachment["size"] == len(photo) and attachment["url"]
    # The largest PhotoSize was downloaded once, through getFile's path.
    downloads = [d for d in fake.downloads if d.token == token and d.status == 200]
    assert [d.size for d in downloads] == [len(photo)]
    served = bob.get(attachment["url"])
    assert (served.status_code, served.headers["content-type"], served.content) == (200, "image/jpeg", photo)
    # Erin is in Support: the Sales conversation is not hers, and neither is its file.
    assert erin.get(attachment["url"]).status_code == 404
    assert erin.get(f"/api/v1/conversations/{conversation_id}/messages/").status_code == 404
    assert Attachment.objects.get(pk=attachment["id"]).file.read() == photo
    return bob, conversation_id, ann


def agent_answers_with_a_pdf_and_a_png(bob: Api, conversation_id: int, fake, ann: dict, after: int = 0) -> None:
    """Bob's reply of text, a PDF and a PNG; ``after``: what the bot had sent Ann before."""
    png = image("PNG", (320, 200), color=(10, 120, 200))
    ids = []
    for name, data in (("terms.pdf", PDF), ("size-chart.png", png)):
        response = bob.post(f"/api/v1/conversations/{conversation_id}/attachments", files={"file": (name, data)})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    response = bob.post(
        f"/api/v1/conversations/{conversation_id}/reply", json={"body": "Yes, here are the details", "attachments": ids}
    )
    assert response.status_code == 201, response.text
    reply_id = response.json()["id"]

    def sent():
        (reply,) = [m for m in bob.thread(conversation_id) if m["id"] == reply_id]
        return reply if reply["delivery"]["status"] in ("sent", "failed") else None

    reply = wait_until(sent, "the reply was never delivered")
    assert reply["delivery"]["status"] == "sent", reply["delivery"]
    assert [a["name"] for a in reply["attachments"]] == ["terms.pdf", "size-chart.png"]
    # The plan: files in order, the text as the first one's caption; the PNG as a photo.
    first, second = [s for s in fake.sent_to(ann["id"]) if s.method.startswith("send")][after:]
    assert (first.method, first.caption, first.text) == ("sendDocument", "Yes, here are the details", None)
    assert [(f.source, f.file_name, f.data) for f in first.files] == [("upload", "terms.pdf", PDF)]
    assert first.message["document"]["file_name"] == "terms.pdf"
    assert (second.method, second.caption) == ("sendPhoto", None)
    assert [(f.source, f.file_name, f.data) for f in second.files] == [("upload", "size-chart.png", png)]


def test_a_photo_by_webhook_is_fetched_by_the_worker_and_a_reply_with_files_goes_out(
    tcast, server, fake, storage, worker
):
    tcast.server = server
    alice = Api(server, tcast.alice)
    channel = new_channel(alice, tcast.sales, TOKEN, "webhook")
    hook = fake.webhook(TOKEN)
    assert hook["url"] == f"{server.url}/hooks/telegram/{channel.public_key}/"

    # Telegram POSTs the update to our webhook view on the live server.
    bob, conversation_id, ann = customer_photo_reaches_the_agent(
        tcast, fake, channel, TOKEN, lambda update: fake.push_update(TOKEN, update)
    )
    assert [d.status for d in fake.webhook_deliveries] == [200]
    agent_answers_with_a_pdf_and_a_png(bob, conversation_id, fake, ann)


def test_a_photo_by_polling_is_fetched_by_the_worker_and_a_reply_with_files_goes_out(
    tcast, server, fake, storage, worker, settings
):
    settings.TELEGRAM_POLL_TIMEOUT = 0
    tcast.server = server
    alice = Api(server, tcast.alice)
    channel = new_channel(alice, tcast.sales, POLLED_TOKEN, "polling")
    assert fake.webhook(POLLED_TOKEN) is None

    def push(update):
        fake.push_update(POLLED_TOKEN, update)
        assert polling.poll(channel.pk, run_seconds=0) == 1

    bob, conversation_id, ann = customer_photo_reaches_the_agent(tcast, fake, channel, POLLED_TOKEN, push)
    agent_answers_with_a_pdf_and_a_png(bob, conversation_id, fake, ann)


# --- VK: the same path through the Callback API and the upload servers -------------------------

VK_GROUP = 4242
VK_TOKEN = "vk1.a.community-token-with-a-long-secret-tail-0042"
VK_SECRET = "callback-secret-value"


@pytest.fixture
def vk(vk_fake, settings):
    settings.VK_API_URL = vk_fake.api_url
    vk_fake.add_group(VK_GROUP, VK_TOKEN, name="Acme community")
    vk_fake.add_user(7, "Ivan", "Petrov")
    return vk_fake


def test_a_photo_by_vks_callback_api_is_fetched_and_a_pdf_reply_is_uploaded_and_sent(
    tcast, server, vk, storage, worker
):
    alice, bob = Api(server, tcast.alice), Api(server, tcast.bob)
    body = {
        "kind": "vk",
        "name": "Community",
        "team": tcast.sales.pk,
        "group_id": VK_GROUP,
        "access_token": VK_TOKEN,
        "mode": "callback",
        "secret": VK_SECRET,
        "confirmation": "c0nf1rm",
    }
    response = alice.post("/api/v1/channels/", json=body)
    assert response.status_code == 201, response.text
    channel = Channel.objects.get(pk=response.json()["id"])
    # The community's Callback API server is our view on the live server: VK confirms it first.
    assert vk.set_callback(VK_GROUP, f"{server.url}/hooks/vk/{channel.public_key}/", VK_SECRET, "c0nf1rm")

    photo = image("PNG", (640, 480), color=(40, 160, 40))
    vk.push_event(VK_GROUP, vk.message_new(VK_GROUP, 7, "Вот фото", photos=[("receipt.png", photo)]))
    vk.wait_for_deliveries()
    assert [(d.type, d.status, d.body) for d in vk.deliveries if d.type == "message_new"] == [
        ("message_new", 200, "ok")
    ]
    conversation_id = the_conversation_of(bob, channel)
    message, attachment = ready_photo(bob, conversation_id)
    assert message["body"] == "Вот фото"
    assert (attachment["status"], attachment["image"], attachment["content_type"]) == ("ready", True, "image/png")
    served = bob.get(attachment["url"])
    assert (served.status_code, served.content) == (200, photo)
    assert Api(server, tcast.erin).get(attachment["url"]).status_code == 404

    uploaded = bob.post(f"/api/v1/conversations/{conversation_id}/attachments", files={"file": ("terms.pdf", PDF)})
    assert uploaded.status_code == 201, uploaded.text
    body = {"body": "Условия", "attachments": [uploaded.json()["id"]]}
    response = bob.post(f"/api/v1/conversations/{conversation_id}/reply", json=body)
    assert response.status_code == 201, response.text
    reply_id = response.json()["id"]

    def delivered():
        (reply,) = [m for m in bob.thread(conversation_id) if m["id"] == reply_id]
        return reply if reply["delivery"]["status"] in ("sent", "failed") else None

    assert wait_until(delivered, "the reply was never delivered")["delivery"]["status"] == "sent"
    (sent,) = vk.sent
    assert (sent.peer_id, sent.text) == (7, "Условия")
    (doc,) = sent.media
    assert (doc.kind, doc.data) == ("doc", PDF)
    # vk-api uploads every file as "file0.<ext>"; the name the customer sees is docs.save's title.
    (save,) = vk.calls_of("docs.save")
    assert save.params["title"] == "terms.pdf"
    assert sent.attachment.startswith(doc.attachment)


# The bot's answers are Bot API calls by name: PTB's "Please use Bot.…" is no line in the log.
@pytest.mark.filterwarnings("error::telegram.warnings.PTBUserWarning")
def test_a_photo_held_for_consent_is_fetched_once_the_customer_accepts(tcast, server, fake, storage, worker):
    tcast.server = server
    alice, bob = Api(server, tcast.alice), Api(server, tcast.bob)
    channel = new_channel(alice, tcast.sales, TOKEN, "webhook")
    response = alice.http.patch(f"/api/v1/channels/{channel.pk}/", json={"consent_required": True})
    assert response.status_code == 200, response.text
    photo = image("JPEG", (1024, 768), color=(90, 90, 200))
    ann = fake.user("Ann", username="ann", language_code="en")
    fake.push_update(TOKEN, fake.photo_update(TOKEN, ann, photo, caption="Before I agree: this"))
    # The worker asks the question; nothing is fetched or shown meanwhile.
    (question,) = fake.wait_for_sent(1, timeout=20)
    assert question.reply_markup and not fake.downloads
    listed = bob.get("/api/v1/conversations/", params={"view": "all", "channel_id": channel.pk}).json()["results"]
    assert listed == []

    accept = question.reply_markup["inline_keyboard"][0][0]["callback_data"]
    fake.push_update(TOKEN, fake.callback_update(TOKEN, ann, accept, question.message))
    conversation_id = the_conversation_of(bob, channel)
    message, attachment = ready_photo(bob, conversation_id)
    assert (message["body"], attachment["status"]) == ("Before I agree: this", "ready")
    assert bob.get(attachment["url"]).content == photo
    agent_answers_with_a_pdf_and_a_png(bob, conversation_id, fake, ann, after=1)
