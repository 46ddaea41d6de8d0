"""VK files: customers' photos and docs downloaded from the URLs their message_new carries, and
replies with files uploaded (photos.getMessagesUploadServer / docs.getMessagesUploadServer →
the upload → saveMessagesPhoto / docs.save) and sent in one messages.send with random_id.

Against ``tests/fakes/vk.py`` with the real vk-api (``VkUpload``) and requests, real
PostgreSQL, and files kept through the attachments storage.
"""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from django.db import transaction
from django.utils import timezone

from helpdesk.conversations import actions, secrets, tasks
from helpdesk.conversations.adapters import FetchError, adapter_for
from helpdesk.conversations.models import Channel, Conversation, Delivery, DeliveryStatus, Message
from integrations.vk import inbound
from tests.fakes.vk import tiny_png
from tests.fakes.vk import vk_fake as vk_fake

GROUP = 4242
TOKEN = "vk1.a.community-token-with-a-long-secret-tail-0042"
SECRET = "callback-secret-value"
LIMIT = 5 * 1024 * 1024
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
def vk(vk_fake, settings):
    settings.VK_API_URL = vk_fake.api_url
    vk_fake.add_group(GROUP, TOKEN, name="Acme community")
    vk_fake.add_user(7, "Ivan", "Petrov")
    return vk_fake


@pytest.fixture
def channel(cast, vk, storage):
    return Channel.objects.create(
        company=cast.acme,
        kind="vk",
        name="Community",
        team=cast.sales,
        settings={"group_id": GROUP, "mode": "callback", "confirmation": "abc", "group_name": "Acme community"},
        secrets=secrets.encrypt({"access_token": TOKEN, "secret": SECRET}),
    )


def fetch(channel, source, max_bytes=LIMIT):
    return adapter_for("vk").fetch_file(channel, source, max_bytes=max_bytes)


def sources_of(channel, event) -> list[dict]:
    """What Attachment.source holds for each file of the event: the InboundAttachment's fields."""
    attachments = inbound.to_inbound(channel, event).attachments
    return [json.loads(json.dumps(dataclasses.asdict(attachment))) for attachment in attachments]


def refused(channel, source, max_bytes=LIMIT) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(channel, source, max_bytes)
    assert TOKEN not in caught.value.message and "/files/" not in caught.value.message
    return caught.value


# --- Customers' files in ---------------------------------------------------------------------


def test_a_photo_and_a_doc_are_fetched_byte_for_byte(channel, vk):
    photo = tiny_png(64, 48)
    event = vk.message_new(GROUP, 7, "look", photos=[("cat.png", photo)], docs=[("invoice", PDF)])
    photo_source, doc_source = sources_of(channel, event)
    assert photo_source["kind"] == "photo" and photo_source["url"].startswith(vk.url)
    assert (doc_source["kind"], doc_source["name"], doc_source["size"]) == ("doc", "invoice", len(PDF))
    assert fetch(channel, photo_source).data == photo
    fetched = fetch(channel, doc_source)
    assert (fetched.data, fetched.name) == (PDF, "invoice")
    assert [(d.status, d.size) for d in vk.downloads] == [(200, len(photo)), (200, len(PDF))]


def test_a_docs_name_gets_its_extension_when_the_title_has_none(channel, vk):
    (with_ext,) = sources_of(channel, vk.message_new(GROUP, 7, docs=[("report.pdf", PDF)]))
    assert with_ext["name"] == "report.pdf"
    event = vk.message_new(GROUP, 7, docs=[("report.pdf", PDF)])
    event["object"]["message"]["attachments"][0]["doc"]["title"] = "Квартальный отчёт"
    (renamed,) = sources_of(channel, event)
    assert renamed["name"] == "Квартальный отчёт.pdf"


def test_a_doc_over_the_limit_by_its_size_is_refused_without_downloading_it(channel, vk):
    (source,) = sources_of(channel, vk.message_new(GROUP, 7, docs=[("big.pdf", PDF * 10)]))
    error = refused(channel, source, max_bytes=len(PDF))
    assert error.too_large and error.permanent and not vk.downloads


def test_a_photo_over_the_limit_is_refused_by_its_length_before_its_body_is_read(channel, vk):
    photo = tiny_png(400, 400)
    (source,) = sources_of(channel, vk.message_new(GROUP, 7, photos=[photo]))
    assert source["size"] is None  # VK gives a photo's size in pixels only
    assert refused(channel, source, max_bytes=len(photo) - 1).too_large
    assert fetch(channel, source, max_bytes=len(photo)).data == photo


def test_a_missing_file_is_a_permanent_failure(channel, vk):
    (source,) = sources_of(channel, vk.message_new(GROUP, 7, docs=[("a.pdf", PDF)]))
    gone = {**source, "url": source["url"].replace("/files/", "/files/x")}
    error = refused(channel, gone)
    assert error.permanent and not error.too_large and error.message == "VK's file server answered HTTP 404."
    # A kind VK gives no address for (a sticker, a voice message): nothing to fetch.
    assert refused(channel, {"kind": "sticker", "name": "sticker"}).permanent
    assert refused(channel, {**source, "url": "file:///etc/passwd"}).permanent


def test_a_redirect_to_an_address_that_is_not_the_web_is_refused(channel, vk):
    (source,) = sources_of(channel, vk.message_new(GROUP, 7, docs=[("a.pdf", PDF)]))
    vk.fail_next("file", None, location="file:///etc/passwd")
    assert refused(channel, source).permanent
    # A redirect to another web address is followed.
    vk.fail_next("file", None, location=source["url"])
    assert fetch(channel, source).data == PDF


@pytest.mark.parametrize(
    ("fault", "retry_after"),
    [({"http_status": 503}, None), ({"http_status": 429}, 1.0), ({"drop": True}, None)],
    ids=["503", "429", "dropped"],
)
def test_vk_busy_or_unreachable_is_retryable_and_the_next_try_gets_the_file(channel, vk, fault, retry_after):
    (source,) = sources_of(channel, vk.message_new(GROUP, 7, docs=[("a.pdf", PDF)]))
    vk.fail_next("file", None, **fault)
    error = refused(channel, source)
    assert not error.permanent and error.retry_after == retry_after
    assert fetch(channel, source).data == PDF


def received_files(client, channel, vk, event) -> list:
    """The event posted to the Callback API as VK does, then each file fetched by the worker's task."""
    event = {**event, "secret": SECRET}
    response = client.post(f"/hooks/vk/{channel.public_key}/", event, content_type="application/json")
    assert (response.status_code, response.content) == (200, b"ok")
    message = Message.objects.get(conversation__channel=channel, external_id__endswith=":1")
    files = list(message.attachments.order_by("pk"))
    for attachment in files:
        tasks.fetch_attachment.run(attachment.pk)
        attachment.refresh_from_db()
    return files


OGG = b"OggS\x00\x02" + bytes(range(256)) * 40  # an Ogg page header: audio/ogg by its content
MP3 = b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(400)


def test_a_voice_message_is_fetched_from_its_ogg_link(client, channel, vk):
    (voice,) = received_files(client, channel, vk, vk.message_new(GROUP, 7, voices=[(OGG, MP3)]))
    assert (voice.status, voice.name, voice.source["kind"]) == ("ready", "voice.ogg", "audio_message"), voice.error
    with voice.file.open("rb") as stored:
        assert stored.read() == OGG
    assert [download.path.rsplit("/", 1)[-1] for download in vk.downloads] == ["voice.ogg"]


def test_a_voice_message_without_an_ogg_link_is_fetched_as_mp3(client, channel, vk):
    (voice,) = received_files(client, channel, vk, vk.message_new(GROUP, 7, voices=[(None, MP3)]))
    assert (voice.status, voice.name, voice.source["kind"]) == ("ready", "voice.mp3", "audio_message"), voice.error
    with voice.file.open("rb") as stored:
        assert stored.read() == MP3


def test_a_sticker_is_fetched_as_its_largest_image(client, channel, vk):
    png = tiny_png(512, 512, (10, 200, 90))
    (sticker,) = received_files(client, channel, vk, vk.message_new(GROUP, 7, stickers=[png]))
    assert (sticker.status, sticker.name, sticker.source["kind"]) == ("ready", "sticker.png", "sticker"), sticker.error
    assert sticker.is_image
    with sticker.file.open("rb") as stored:
        assert stored.read() == png
    ((path, status),) = [(d.path, d.status) for d in vk.downloads]
    assert path.endswith("-512.png") and status == 200


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "audio_message", "audio_message": {"link_ogg": 5, "link_mp3": ["x"]}},
        {"type": "audio_message", "audio_message": {"link_ogg": "file:///etc/passwd"}},
        {"type": "sticker", "sticker": {"images": "not a list"}},
        {"type": "sticker", "sticker": {"images": [{"url": 1}, {"width": "wide", "url": "ftp://x/1.png"}, None]}},
        {"type": "sticker", "sticker": None},
    ],
    ids=["voice links not text", "voice from a file: url", "images not a list", "odd images", "no sticker"],
)
def test_a_malformed_voice_or_sticker_is_kept_described_and_never_fetched(client, channel, vk, broken):
    event = vk.message_new(GROUP, 7, "look")
    event["object"]["message"]["attachments"] = [broken]
    (attachment,) = received_files(client, channel, vk, event)
    assert attachment.status == "failed" and attachment.error
    assert vk.downloads == []


# --- Replies with files out ------------------------------------------------------------------


@pytest.fixture
def conversation(client, channel, vk) -> Conversation:
    event = {**vk.message_new(GROUP, 7, "Can I see it?"), "secret": SECRET}
    assert client.post(f"/hooks/vk/{channel.public_key}/", event, content_type="application/json").status_code == 200
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


def test_a_photo_and_a_doc_are_uploaded_and_sent_in_one_message_with_the_deliverys_random_id(cast, conversation, vk):
    photo = tiny_png(32, 32)
    delivery = reply_with_files(conversation, cast.bob, "Вот они", [("cat.png", photo), ("invoice.pdf", PDF)])
    assert deliver(delivery) == DeliveryStatus.SENT, delivery.last_error
    (sent,) = vk.sent
    assert (sent.peer_id, sent.text, sent.random_id) == (7, "Вот они", delivery.idempotency_key)
    uploaded_photo, uploaded_doc = sent.media
    assert (uploaded_photo.kind, uploaded_photo.owner_id, uploaded_photo.data) == ("photo", -GROUP, photo)
    assert (uploaded_doc.kind, uploaded_doc.data) == ("doc", PDF)
    assert sent.attachment.split(",")[0].startswith(uploaded_photo.attachment)
    assert sent.attachment.split(",")[1].startswith(uploaded_doc.attachment)
    (save,) = vk.calls_of("docs.save")
    assert save.params["title"] == "invoice.pdf"
    (server,) = vk.calls_of("docs.getMessagesUploadServer")
    assert server.params["peer_id"] == "7"
    assert delivery.provider_message_id == str(sent.message_id)


def test_a_gif_goes_as_a_doc_and_a_files_only_reply_has_no_text(cast, conversation, vk):
    gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00"
    gif += b"\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
    delivery = reply_with_files(conversation, cast.bob, "", [("dance.gif", gif)])
    assert deliver(delivery) == DeliveryStatus.SENT, delivery.last_error
    (sent,) = vk.sent
    assert sent.text == "" and [m.kind for m in sent.media] == ["doc"]
    assert vk.calls_of("photos.getMessagesUploadServer") == []


def test_an_upload_failing_after_the_first_file_is_retried_and_the_message_posts_once(cast, conversation, vk):
    photo = tiny_png(16, 16)
    delivery = reply_with_files(conversation, cast.bob, "Оба", [("cat.png", photo), ("invoice.pdf", PDF)])
    vk.fail_next("docs.save", 10)  # VK's internal error on the second file, after the photo was uploaded
    assert deliver(delivery) == DeliveryStatus.QUEUED and delivery.last_error.startswith("VK error 10")
    assert vk.sent == []
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert deliver(delivery) == DeliveryStatus.SENT, delivery.last_error
    (sent,) = vk.sent
    assert [m.data for m in sent.media] == [photo, PDF] and sent.random_id == delivery.idempotency_key
    # The answer to messages.send was lost: sent again, VK drops the repeat by its random_id.
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.QUEUED)
    assert deliver(delivery) == DeliveryStatus.SENT
    assert len(vk.sent) == 1 and len(vk.calls_of("messages.send")) == 2


def test_a_refused_upload_fails_the_delivery_with_vks_words(cast, conversation, vk):
    delivery = reply_with_files(conversation, cast.bob, "doc", [("invoice.pdf", PDF)])
    vk.fail_next("docs.getMessagesUploadServer", 15, error_msg="Access denied: no access to call this method")
    assert deliver(delivery) == DeliveryStatus.FAILED
    assert delivery.last_error == "VK error 15: Access denied: no access to call this method"
    assert TOKEN not in delivery.last_error and vk.sent == []
