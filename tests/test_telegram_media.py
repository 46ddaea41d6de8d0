"""Telegram files: customers' files fetched by getFile and the file server, replies with files
sent by sendPhoto/sendDocument, and a reply of several sends never sending a part twice.

Against ``tests/fakes/telegram.py`` with the real python-telegram-bot (and httpx for the
download), real PostgreSQL, and files kept through the attachments storage.
"""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from django.db import transaction
from django.utils import timezone
from PIL import Image

from helpdesk.conversations import actions, secrets, tasks
from helpdesk.conversations.adapters import FetchError, adapter_for
from helpdesk.conversations.models import Channel, Conversation, Delivery, DeliveryStatus, Message
from integrations.telegram import inbound
from integrations.telegram.setup import webhook_secret
from tests.fakes.telegram import fake_telegram as fake_telegram

TOKEN = "123456789:AAEhBOweik9ai2o4sbVX-wQzSOMESECRETTAIL"
SECRET_PART = TOKEN.split(":")[1]
LIMIT = 5 * 1024 * 1024


def image(kind: str, size: tuple[int, int] = (64, 48), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, kind)
    return out.getvalue()


PDF = b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog >> endobj\n" * 200 + b"%%EOF\n"


@pytest.fixture
def storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "attachments")},
        },
    }


@pytest.fixture
def fake(fake_telegram, settings):
    settings.TELEGRAM_API_URL = fake_telegram.url
    fake_telegram.add_bot(TOKEN, username="acme_support_bot")
    return fake_telegram


@pytest.fixture
def channel(cast, fake, storage):
    return Channel.objects.create(
        company=cast.acme,
        kind="telegram",
        name="Acme bot",
        team=cast.sales,
        settings={"mode": "webhook", "bot_username": "acme_support_bot"},
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )


def fetch(channel, source, max_bytes=LIMIT):
    return adapter_for("telegram").fetch_file(channel, source, max_bytes=max_bytes)


def source_of(fake, update) -> dict:
    """What Attachment.source holds for the update's one file: the InboundAttachment's fields."""
    update = {"update_id": fake.push_update(TOKEN, update), **update}
    (attachment,) = inbound.to_inbound(update).attachments
    return json.loads(json.dumps(dataclasses.asdict(attachment)))  # as the JSON column keeps it


def refused(channel, source, max_bytes=LIMIT) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(channel, source, max_bytes)
    assert SECRET_PART not in caught.value.message
    return caught.value


# --- Customers' files in ---------------------------------------------------------------------


def test_a_photo_is_fetched_at_its_largest_size(channel, fake):
    photo = image("JPEG", (1280, 960))
    source = source_of(fake, fake.photo_update(TOKEN, fake.user("Ann"), photo, caption="my cat"))
    assert (source["kind"], source["size"]) == ("photo", len(photo))
    fetched = fetch(channel, source)
    assert fetched.data == photo
    assert fetched.name.endswith(".jpg") and SECRET_PART not in fetched.name
    (download,) = fake.downloads
    assert (download.status, download.size) == (200, len(photo))


def document(fake, user, data):
    return fake.document_update(TOKEN, user, data, file_name="invoice.pdf")


def voice(fake, user, data):
    return fake.voice_update(TOKEN, user, data)


def sticker(fake, user, data):
    return fake.sticker_update(TOKEN, user, data)


def animated_sticker(fake, user, data):
    return fake.sticker_update(TOKEN, user, data, animated=True)


@pytest.mark.parametrize(
    ("build", "kind", "name", "mime_type"),
    [
        (document, "document", "invoice.pdf", "application/pdf"),
        (voice, "voice", "voice.ogg", "audio/ogg"),
        (sticker, "sticker", "sticker.webp", "image/webp"),
        (animated_sticker, "sticker", "sticker.tgs", "application/x-tgsticker"),
    ],
    ids=["document", "voice", "static sticker", "animated sticker"],
)
def test_documents_voice_and_stickers_are_fetched_byte_for_byte(channel, fake, build, kind, name, mime_type):
    data = {
        "document": PDF,
        "voice": b"OggS\x00\x02" + bytes(range(256)) * 40,
        "sticker": image("WEBP", (512, 512)) if name.endswith(".webp") else b"\x1f\x8b\x08\x00" + b"lottie" * 300,
    }[kind]
    source = source_of(fake, build(fake, fake.user("Ann"), data))
    assert (source["kind"], source["name"], source["mime_type"], source["size"]) == (kind, name, mime_type, len(data))
    assert source["file_id"]
    assert fetch(channel, source).data == data


def test_a_file_over_the_limit_by_the_updates_size_is_refused_without_asking_telegram(channel, fake):
    source = source_of(fake, fake.document_update(TOKEN, fake.user("Ann"), PDF * 10, file_name="big.pdf"))
    error = refused(channel, source, max_bytes=len(PDF))
    assert error.too_large and error.permanent
    assert not [call for call in fake.calls if call.method.lower() == "getfile"] and not fake.downloads


def test_a_file_over_the_limit_by_getfiles_size_is_refused_without_downloading_it(channel, fake):
    file_id = fake.add_file(TOKEN, PDF * 10, file_name="big.pdf")
    error = refused(channel, {"file_id": file_id, "kind": "document"}, max_bytes=len(PDF))
    assert error.too_large
    assert [call.method for call in fake.calls] == ["getFile"] and not fake.downloads


def test_a_file_of_no_stated_size_is_refused_once_the_download_passes_the_limit(channel, fake):
    file_id = fake.add_file(TOKEN, PDF * 10, file_name="big.pdf", report_size=False)
    error = refused(channel, {"file_id": file_id}, max_bytes=len(PDF))
    assert error.too_large
    assert len(fake.downloads) == 1
    # The same file under the limit comes whole.
    assert fetch(channel, {"file_id": file_id}, max_bytes=len(PDF) * 10).data == PDF * 10


def test_a_file_telegram_calls_too_big_for_bots_is_too_large(channel, fake):
    file_id = fake.add_file(TOKEN, b"\0" * (20 * 1024 * 1024 + 1), file_name="film.mp4")
    error = refused(channel, {"file_id": file_id}, max_bytes=30 * 1024 * 1024)
    assert error.too_large and not fake.downloads


def test_a_missing_file_is_a_permanent_failure(channel, fake):
    error = refused(channel, {"file_id": "BQACAgIAAxkBAAnot-a-file", "kind": "document"})
    assert error.permanent and not error.too_large
    # Telegram answers 400 "Bad Request: invalid file_id"; PTB keeps the words after the prefix.
    assert error.message == "Telegram refused the file: Invalid file_id"
    assert refused(channel, {"kind": "document"}).permanent  # described with no file_id at all
    # A path that is gone from the file server (paths last an hour): permanent too.
    file_id = fake.add_file(TOKEN, PDF, file_name="a.pdf")
    fake.fail_next(TOKEN, "file", status=404)
    assert refused(channel, {"file_id": file_id}).permanent


@pytest.mark.parametrize(
    ("method", "fault", "retry_after"),
    [
        ("getFile", {"status": 429, "retry_after": 7}, 7.0),
        ("getFile", {"status": 502}, None),
        ("getFile", {"status": None, "drop": True}, None),
        ("file", {"status": 503}, None),
        ("file", {"status": 429, "retry_after": 4}, 4.0),
        ("file", {"status": None, "drop": True}, None),
    ],
    ids=["getFile 429", "getFile 502", "getFile dropped", "download 503", "download 429", "download dropped"],
)
def test_telegram_busy_or_unreachable_is_retryable_and_the_next_try_gets_the_file(
    channel, fake, method, fault, retry_after
):
    file_id = fake.add_file(TOKEN, PDF, file_name="a.pdf")
    fake.fail_next(TOKEN, method, **fault)
    error = refused(channel, {"file_id": file_id})
    assert not error.permanent and error.retry_after == retry_after
    assert fetch(channel, {"file_id": file_id}).data == PDF


def test_a_refused_token_is_permanent_and_never_quoted(channel, fake):
    file_id = fake.add_file(TOKEN, PDF, file_name="a.pdf")
    fake.revoke(TOKEN)
    assert refused(channel, {"file_id": file_id}).permanent


# --- Replies with files out ------------------------------------------------------------------


def post(client, channel, update):
    update = {"update_id": update.get("update_id") or 0, **update}
    headers = {"X-Telegram-Bot-Api-Secret-Token": webhook_secret(channel)}
    return client.post(
        f"/hooks/telegram/{channel.public_key}/", json.dumps(update), content_type="application/json", headers=headers
    )


@pytest.fixture
def ann(fake):
    return fake.user("Ann")


@pytest.fixture
def conversation(client, channel, fake, ann) -> Conversation:
    update = fake.text_update(TOKEN, ann, "Can I see it?")
    assert post(client, channel, {"update_id": fake.push_update(TOKEN, update), **update}).status_code == 200
    return Conversation.objects.get(channel=channel)


def reply_with_files(conversation, employee, body, files) -> Delivery:
    """A reply carrying ``files`` (name, bytes), uploaded and bound as the reply box does; an
    empty ``body`` is a reply of files only."""
    uploads = [
        actions.upload_attachment(conversation, stream=io.BytesIO(data), name=name, by_employee=employee)
        for name, data in files
    ]
    message = actions.post_reply(conversation, by=employee, body=body or "(files)")
    with transaction.atomic():
        actions.bind_uploads(message, [upload.pk for upload in uploads], by_employee=employee)
    if not body:
        Message.objects.filter(pk=message.pk).update(body="")
    return Delivery.objects.get(message=message)


def deliver(delivery) -> str:
    status = tasks.deliver.run(delivery.pk)
    delivery.refresh_from_db()
    return status


def test_a_photo_and_a_document_go_out_in_order_with_the_text_as_the_photos_caption(cast, conversation, fake, ann):
    photo = image("PNG", (320, 200))
    delivery = reply_with_files(conversation, cast.bob, "Here they are", [("cat.png", photo), ("invoice.pdf", PDF)])
    assert deliver(delivery) == DeliveryStatus.SENT, delivery.last_error
    first, second = fake.sent_to(ann["id"])
    assert (first.method, first.caption, first.text) == ("sendPhoto", "Here they are", None)
    ((photo_file,),) = [first.files]
    assert (photo_file.source, photo_file.data, photo_file.file_name) == ("upload", photo, "cat.png")
    assert (second.method, second.caption) == ("sendDocument", None)
    (document,) = second.files
    assert (document.source, document.data, document.file_name) == ("upload", PDF, "invoice.pdf")
    assert second.message["document"]["file_name"] == "invoice.pdf"
    ids = f"{first.message['message_id']},{second.message['message_id']}"
    assert delivery.provider_message_id == f"{ann['id']}:{ids}"
    assert set(delivery.parts) == {f"file:{a.pk}" for a in delivery.message.attachments.all()}


def test_a_text_too_long_for_a_caption_goes_first_on_its_own(cast, conversation, fake, ann):
    text = "A long answer. " * 80  # 1200 characters: more than a caption may hold
    gif = image("GIF")
    delivery = reply_with_files(conversation, cast.bob, text.strip(), [("dance.gif", gif)])
    assert deliver(delivery) == DeliveryStatus.SENT, delivery.last_error
    first, second = fake.sent_to(ann["id"])
    assert (first.method, first.text) == ("sendMessage", text.strip())
    # A GIF goes as a document (Telegram shows it animated), under its own name, uncaptioned.
    assert (second.method, second.caption, second.files[0].file_name) == ("sendDocument", None, "dance.gif")


def test_an_image_telegram_refuses_as_a_photo_goes_as_a_document(cast, conversation, fake, ann):
    photo = image("JPEG")
    delivery = reply_with_files(conversation, cast.bob, "", [("wide.jpg", photo)])
    fake.fail_next(TOKEN, "sendPhoto", status=400, description="Bad Request: PHOTO_INVALID_DIMENSIONS")
    assert deliver(delivery) == DeliveryStatus.SENT, delivery.last_error
    (sent,) = fake.sent_to(ann["id"])
    assert (sent.method, sent.files[0].data, sent.files[0].file_name) == ("sendDocument", photo, "wide.jpg")


def test_a_photo_refused_for_another_reason_is_not_sent_again_as_a_document(cast, conversation, fake, ann):
    delivery = reply_with_files(conversation, cast.bob, "", [("cat.jpg", image("JPEG"))])
    fake.fail_next(TOKEN, "sendPhoto", status=400, description="Bad Request: chat not found")
    assert deliver(delivery) == DeliveryStatus.FAILED
    assert delivery.last_error == "Chat not found"
    assert [call.method for call in fake.calls] == ["sendPhoto"]


def test_a_failure_after_the_first_of_two_files_retries_only_the_second(cast, conversation, fake, ann):
    photo = image("PNG")
    delivery = reply_with_files(conversation, cast.bob, "Both", [("cat.png", photo), ("invoice.pdf", PDF)])
    fake.fail_next(TOKEN, "sendDocument", status=502)
    assert deliver(delivery) == DeliveryStatus.QUEUED
    assert [sent.method for sent in fake.sent_to(ann["id"])] == ["sendPhoto"]
    assert list(delivery.parts) == [f"file:{delivery.message.attachments.order_by('pk').first().pk}"]

    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())  # its backoff is over
    assert deliver(delivery) == DeliveryStatus.SENT, delivery.last_error
    sent = fake.sent_to(ann["id"])
    assert [(s.method, s.caption, s.files[0].data) for s in sent] == [
        ("sendPhoto", "Both", photo),
        ("sendDocument", None, PDF),
    ]
    assert delivery.provider_message_id == f"{ann['id']}:{sent[0].message_id},{sent[1].message_id}"


def test_no_answer_to_the_second_file_keeps_the_first_and_names_the_second(cast, conversation, fake, ann, settings):
    """The document went out but its answer never came: unknown, the photo stays recorded, and a
    person's Retry sends the document (and only it) again."""
    settings.TELEGRAM_SEND_TIMEOUT = 0.3
    photo = image("PNG")
    delivery = reply_with_files(conversation, cast.bob, "Both", [("cat.png", photo), ("invoice.pdf", PDF)])
    first = delivery.message.attachments.order_by("pk").first()
    fake.stall_next(TOKEN, "sendDocument", 2.0)
    assert deliver(delivery) == DeliveryStatus.UNKNOWN, delivery.last_error
    assert [sent.method for sent in fake.sent_to(ann["id"])] == ["sendPhoto", "sendDocument"]
    assert list(delivery.parts) == [f"file:{first.pk}"]
    assert "“invoice.pdf”" in delivery.last_error and "may have reached the customer" in delivery.last_error
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliver(delivery) is None and len(fake.sent_to(ann["id"])) == 2  # never resent by itself

    actions.retry_delivery(delivery, by=cast.bob)
    assert deliver(delivery) == DeliveryStatus.SENT, delivery.last_error
    assert [(s.method, s.files[0].file_name) for s in fake.sent_to(ann["id"])] == [
        ("sendPhoto", "cat.png"),
        ("sendDocument", "invoice.pdf"),
        ("sendDocument", "invoice.pdf"),
    ]


def test_a_person_retrying_a_failed_reply_sends_only_what_did_not_go(cast, conversation, fake, ann):
    photo = image("PNG")
    delivery = reply_with_files(conversation, cast.bob, "", [("cat.png", photo), ("invoice.pdf", PDF)])
    fake.fail_next(TOKEN, "sendDocument", status=403, description="Forbidden: bot was blocked by the user")
    assert deliver(delivery) == DeliveryStatus.FAILED
    assert delivery.last_error == "Forbidden: bot was blocked by the user" and len(delivery.parts) == 1
    actions.retry_delivery(delivery, by=cast.bob)  # the customer unblocked the bot
    assert deliver(delivery) == DeliveryStatus.SENT, delivery.last_error
    assert [(s.method, s.files[0].data) for s in fake.sent_to(ann["id"])] == [
        ("sendPhoto", photo),
        ("sendDocument", PDF),
    ]


def test_a_reply_without_files_is_one_send_with_no_parts_kept(cast, conversation, fake, ann):
    delivery = Delivery.objects.get(message=actions.post_reply(conversation, by=cast.bob, body="Just text"))
    assert deliver(delivery) == DeliveryStatus.SENT
    (sent,) = fake.sent_to(ann["id"])
    assert (sent.method, sent.text) == ("sendMessage", "Just text")
    assert delivery.parts == {} and delivery.provider_message_id == f"{ann['id']}:{sent.message_id}"
