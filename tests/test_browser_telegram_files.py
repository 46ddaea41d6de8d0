"""In a real Chromium, with the real web server, a real worker and the fake Telegram: an agent
watches a customer's photo arrive in a Telegram conversation (the worker fetches it, the
preview appears live), answers with a photo from the picker, sees it sent; then the customer
has blocked the bot, the next reply is not delivered, and Retry sends it once they unblock."""

from __future__ import annotations

import io
import os
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.storage import storages
from PIL import Image

from helpdesk.conversations import secrets
from helpdesk.conversations.models import Channel, Conversation
from integrations.telegram.setup import TelegramSetup
from smartchat.celery import app
from tests.delivery_kit import drain
from tests.fakes.telegram import fake_telegram as fake_telegram
from tests.test_browser import ARTIFACTS, browser, orm, server  # noqa: F401 (fixtures)
from tests.test_browser_deletion import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TOKEN = "123456789:AAEhBOweik9ai2o4sbVX-wQzSOMESECRETTAIL"
BLOCKED = "Not delivered: Forbidden: bot was blocked by the user"


def image(kind: str, size: tuple[int, int], color) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, kind)
    return out.getvalue()


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
def fake(fake_telegram, settings):
    settings.TELEGRAM_API_URL = fake_telegram.url
    fake_telegram.add_bot(TOKEN, username="acme_support_bot")
    return fake_telegram


@pytest.fixture
def worker(server, settings):  # noqa: F811
    settings.DELIVERY_QUEUE = queue = f"test-browser-tg-{os.getpid()}-{time.monotonic_ns()}"
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=20):
        yield
    drain(queue)


AT_END = """() => {
  const thread = document.querySelector("[data-thread]");
  return thread.scrollHeight - thread.scrollTop - thread.clientHeight < 4;
}"""


def follows_the_end(page) -> bool:
    """The thread shows its newest line (images load after their message was added)."""
    page.wait_for_timeout(200)  # a moment for any scroll that follows a load
    return page.evaluate(AT_END)


def webhook_channel(cast, server) -> Channel:  # noqa: F811
    """A Telegram bot in webhook mode, its webhook set at the fake to the live server."""
    channel = Channel.objects.create(
        company=cast.acme,
        kind="telegram",
        name="Acme bot",
        team=cast.sales,
        settings={"mode": "webhook", "bot_username": "acme_support_bot"},
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )
    TelegramSetup().after_save(channel)
    return channel


def test_an_agent_sees_a_customers_photo_answers_with_one_and_retries_a_blocked_reply(
    tcast,
    server,  # noqa: F811
    browser,  # noqa: F811
    fake,
    worker,
    settings,
    tmp_path,
):
    settings.PUBLIC_URL = server.url
    channel = orm(webhook_channel, tcast, server)
    assert fake.webhook(TOKEN)["url"] == f"{server.url}/hooks/telegram/{channel.public_key}/"
    ann = fake.user("Ann", username="ann")
    fake.push_update(TOKEN, fake.text_update(TOKEN, ann, "Hello, a question about my order"))
    assert fake.wait_for(lambda f: [d for d in f.webhook_deliveries if d.status == 200], timeout=10)
    conversation = orm(lambda: Conversation.objects.get(channel=channel))

    bob = signed_in(browser, server, tcast.bob)
    bob.goto(f"{server.url}/inbox/{conversation.pk}/?view=all&status=open")
    bob.wait_for_selector("body[data-live=yes]")
    bob.set_viewport_size({"width": 1280, "height": 640})  # a thread shorter than its messages

    # The customer sends a photo while Bob watches: the worker fetches it and the preview shows, live.
    photo = image("JPEG", (800, 600), (200, 30, 30))
    fake.push_update(TOKEN, fake.photo_update(TOKEN, ann, photo, caption="This one is broken"))
    theirs = bob.locator("[data-thread] .message.inbound").last
    theirs.get_by_text("This one is broken").wait_for()
    theirs.get_by_test_id("file-image").wait_for()
    bob.wait_for_function(
        "() => [...document.querySelectorAll('[data-thread] .message.inbound [data-testid=file-image] img')]"
        ".some((img) => img.complete && img.naturalWidth === 800)"
    )
    served = bob.request.get(server.url + theirs.get_by_test_id("file-image").get_attribute("href"))
    assert (served.status, served.body()) == (200, photo)
    assert follows_the_end(bob)

    # Bob answers with a photo from the picker: Sent, and Telegram got the photo, captioned.
    mine = image("PNG", (320, 200), (10, 120, 200))
    picked = tmp_path / "replacement.png"
    picked.write_bytes(mine)
    with bob.expect_file_chooser() as chooser:
        bob.get_by_test_id("attach").click()
    chooser.value.set_files(str(picked))
    bob.wait_for_function("() => document.querySelectorAll('[data-testid=upload-chip].ready').length === 1")
    bob.get_by_test_id("composer-input").fill("We will send this one instead")
    bob.get_by_test_id("send").click()
    sent = bob.locator("[data-thread] .message.outbound").last
    sent.get_by_test_id("file-image").wait_for()
    sent.get_by_text("Sent", exact=True).wait_for()
    bob.wait_for_function(
        "() => [...document.querySelectorAll('[data-thread] .message.outbound [data-testid=file-image] img')]"
        ".some((img) => img.complete && img.naturalWidth === 320)"
    )
    assert follows_the_end(bob)
    (reply,) = fake.sent_to(ann["id"])
    assert (reply.method, reply.caption) == ("sendPhoto", "We will send this one instead")
    assert [(f.file_name, f.data) for f in reply.files] == [("replacement.png", mine)]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    bob.screenshot(path=str(ARTIFACTS / "e2e-telegram-files.png"), full_page=True)

    # Ann blocks the bot: the next reply is refused with 403, and Bob sees why, with Retry.
    fake.block(TOKEN, ann["id"])
    bob.get_by_test_id("composer-input").fill("Did the photo arrive?")
    bob.get_by_test_id("send").click()
    failed = bob.locator("[data-thread] .message.outbound").last
    failed.get_by_text(BLOCKED).wait_for()
    assert len(fake.sent_to(ann["id"])) == 1
    assert follows_the_end(bob)
    bob.screenshot(path=str(ARTIFACTS / "e2e-telegram-blocked.png"), full_page=True)

    # She unblocks it; Retry sends the reply, once.
    fake.unblock(TOKEN, ann["id"])
    failed.get_by_test_id("message-retry").click()
    failed.get_by_text("Sent", exact=True).wait_for()
    assert failed.get_by_test_id("message-retry").count() == 0
    assert [(s.method, s.text) for s in fake.sent_to(ann["id"])][1:] == [("sendMessage", "Did the photo arrive?")]

    # Opened again, the thread shows its end once its images have loaded; a reader scrolled up
    # to older messages stays there while a new photo arrives and loads.
    bob.reload()
    bob.wait_for_selector("body[data-live=yes]")
    bob.wait_for_function(
        "() => [...document.querySelectorAll('[data-thread] [data-testid=file-image] img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    assert follows_the_end(bob)
    bob.evaluate("() => { document.querySelector('[data-thread]').scrollTop = 0; }")
    fake.push_update(TOKEN, fake.photo_update(TOKEN, ann, image("JPEG", (640, 480), (0, 90, 0)), caption="Another"))
    bob.wait_for_function(
        "() => [...document.querySelectorAll('[data-thread] [data-testid=file-image] img')]"
        ".some((img) => img.complete && img.naturalWidth === 640)"
    )
    bob.wait_for_timeout(200)
    assert bob.evaluate("() => document.querySelector('[data-thread]').scrollTop") == 0
