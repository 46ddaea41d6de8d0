"""Agents' files: uploads through the API, replies and notes that carry them, and the file view.

The file view is asked through real links (``attachments.link``) by the fixed cast: alice
(admin, sees all and deleted messages), bob (agent in Sales, whose conversation it is), erin
(agent in Support: not hers), dave (sees only what is assigned to him), carol (another company).
"""

from __future__ import annotations

import io
import time
import zipfile
from urllib.parse import unquote

import pytest
from django.core import signing
from django.test import Client

from helpdesk.accounts import actions as admin_actions
from helpdesk.conversations import actions, attachments
from helpdesk.conversations.actions.attachments import CHUNK, read_limited
from helpdesk.conversations.models import Attachment, Message
from helpdesk.errors import ActionError
from tests.conftest import login
from tests.test_api_tokens import bearer

API = "/api/v1/conversations/"
# The smallest valid PNG and PDF; an ELF program's first bytes.
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
    b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200


@pytest.fixture(autouse=True)
def _files_in_a_temporary_folder(settings, tmp_path):
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    storages._storages.pop("attachments", None)
    yield
    storages._storages.pop("attachments", None)


def upload(client, conversation, data: bytes, name: str, **headers):
    return client.post(f"{API}{conversation.pk}/attachments", {"file": _named(data, name)}, headers=headers)


def _named(data: bytes, name: str) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def reply(client, conversation, **payload):
    return client.post(f"{API}{conversation.pk}/reply", payload, content_type="application/json")


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "hello")
    return buffer.getvalue()


def as_employee(employee) -> Client:
    client = Client()
    login(client, employee)
    return client


def sent_with_a_reply(cast, data: bytes = PNG, name: str = "cat.png", *, by=None) -> Attachment:
    by = by or cast.bob
    attachment = actions.upload_attachment(cast.conversation, stream=io.BytesIO(data), name=name, by_employee=by)
    actions.post_reply(cast.conversation, by=by, body="", attachment_ids=[attachment.pk])
    attachment.refresh_from_db()
    return attachment


# --- Uploading and replying -----------------------------------------------------------------


def test_an_agent_uploads_an_image_and_replies_with_it_alone(client, cast):
    login(client, cast.bob)
    response = upload(client, cast.conversation, PNG, "cat.png")
    assert response.status_code == 201, response.content
    uploaded = response.json()
    assert (uploaded["name"], uploaded["content_type"], uploaded["size"]) == ("cat.png", "image/png", len(PNG))
    assert (uploaded["status"], uploaded["image"]) == ("ready", True)
    assert uploaded["url"].startswith("/files/")

    response = reply(client, cast.conversation, attachments=[uploaded["id"]])
    assert response.status_code == 201, response.content
    message = response.json()
    assert message["body"] == "" and [a["id"] for a in message["attachments"]] == [uploaded["id"]]
    assert Attachment.objects.get(pk=uploaded["id"]).message_id == message["id"]
    cast.conversation.refresh_from_db()
    assert cast.conversation.last_message_preview == "📎 cat.png"
    # The thread shows it to the API too.
    listed = client.get(f"{API}{cast.conversation.pk}/messages/").json()["results"][-1]
    assert listed["attachments"][0]["name"] == "cat.png"


def test_a_note_can_carry_a_file(client, cast):
    login(client, cast.bob)
    uploaded = upload(client, cast.conversation, PDF, "plan.pdf").json()
    response = client.post(
        f"{API}{cast.conversation.pk}/notes",
        {"body": "See the plan", "attachments": [uploaded["id"]]},
        content_type="application/json",
    )
    assert response.status_code == 201
    assert response.json()["attachments"][0]["content_type"] == "application/pdf"


def test_a_reply_needs_text_or_a_file(client, cast):
    login(client, cast.bob)
    response = reply(client, cast.conversation, body="  ", attachments=[])
    assert response.status_code == 400 and "body" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("data", "name", "status", "code"),
    [
        (ELF, "holiday.jpg", 415, "file_type_not_allowed"),  # a program is a program, whatever its name
        (b"MZ\x90\x00" + b"\x00" * 100, "invoice.pdf", 415, "file_type_not_allowed"),  # a Windows .exe
        (b"", "empty.txt", 400, "file_empty"),
    ],
)
def test_a_file_is_judged_by_its_content(client, cast, data, name, status, code):
    login(client, cast.bob)
    response = upload(client, cast.conversation, data, name)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert not Attachment.objects.exists()


def test_a_file_named_like_an_image_is_typed_by_what_it_is_and_served_as_a_download(client, cast):
    login(client, cast.bob)
    archive = upload(client, cast.conversation, zip_bytes(), "photo.jpg").json()
    assert (archive["content_type"], archive["image"]) == ("application/zip", False)
    page = upload(client, cast.conversation, b"<html><script>alert(1)</script></html>", "photo.jpg").json()
    assert (page["content_type"], page["image"]) == ("text/plain", False)
    served = client.get(page["url"])
    assert served.status_code == 200
    assert served["Content-Type"] == "text/plain"
    assert served["Content-Disposition"].startswith("attachment;")
    assert served["X-Content-Type-Options"] == "nosniff"


def test_a_file_over_the_size_limit_is_a_413_and_nothing_is_kept(client, cast, settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    login(client, cast.bob)
    response = upload(client, cast.conversation, PNG + b"\x00" * 2000, "big.png")
    assert (response.status_code, response.json()["error"]["code"]) == (413, "file_too_large")
    assert "at most 1000 B" in response.json()["error"]["message"]
    # Far over the limit: refused by the request's declared length, before the body is parsed.
    response = upload(client, cast.conversation, b"\x00" * 200_000, "huge.bin")
    assert (response.status_code, response.json()["error"]["code"]) == (413, "file_too_large")
    assert not Attachment.objects.exists()


def test_the_size_limit_stops_reading_a_stream_at_the_limit(settings):
    settings.ATTACHMENT_MAX_BYTES = 100_000

    class Endless(io.RawIOBase):
        read_bytes = 0

        def read(self, size=-1):
            size = CHUNK if size is None or size < 0 else size
            self.read_bytes += size
            return b"\x00" * size

    stream = Endless()
    with pytest.raises(ActionError) as refused:
        read_limited(stream, "endless.bin")
    assert refused.value.code == "file_too_large"
    assert stream.read_bytes <= settings.ATTACHMENT_MAX_BYTES + CHUNK
    with pytest.raises(ActionError):  # a declared size over the limit: not a byte is read
        read_limited(Endless(), "big.bin", declared_size=100_001)


def test_a_reply_carries_at_most_the_files_per_message(client, cast, settings):
    settings.ATTACHMENTS_PER_MESSAGE = 2
    login(client, cast.bob)
    ids = [upload(client, cast.conversation, PDF, f"{n}.pdf").json()["id"] for n in range(3)]
    before = Message.objects.count()
    response = reply(client, cast.conversation, body="three", attachments=ids)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "too_many_files")
    assert Message.objects.count() == before
    assert not Attachment.objects.filter(message__isnull=False).exists()


def test_someone_elses_or_another_conversations_upload_is_refused_and_nothing_is_bound(client, cast):
    other_chat = actions.receive_message(
        channel=cast.widget, external_contact_id="visitor-2", body="Hi", external_id="w:2"
    ).conversation
    alices = actions.upload_attachment(cast.conversation, stream=io.BytesIO(PDF), name="a.pdf", by_employee=cast.alice)
    elsewhere = actions.upload_attachment(other_chat, stream=io.BytesIO(PDF), name="b.pdf", by_employee=cast.bob)
    globex_chat = actions.receive_message(
        channel=cast.globex_widget, external_contact_id="g-1", body="Hi", external_id="g:1"
    ).conversation
    foreign = actions.upload_attachment(globex_chat, stream=io.BytesIO(PDF), name="c.pdf", by_employee=cast.carol)
    mine = actions.upload_attachment(cast.conversation, stream=io.BytesIO(PDF), name="d.pdf", by_employee=cast.bob)
    login(client, cast.bob)
    before = Message.objects.count()
    for wrong in (alices, elsewhere, foreign):
        response = reply(client, cast.conversation, body="with files", attachments=[mine.pk, wrong.pk])
        assert (response.status_code, response.json()["error"]["code"]) == (400, "bad_attachment")
    assert reply(client, cast.conversation, body="made up", attachments=[10**9]).status_code == 400
    assert Message.objects.count() == before
    assert not Attachment.objects.filter(message__isnull=False).exists()
    # Already sent: it can't be sent a second time.
    assert reply(client, cast.conversation, attachments=[mine.pk]).status_code == 201
    assert reply(client, cast.conversation, attachments=[mine.pk]).json()["error"]["code"] == "bad_attachment"


def test_uploading_is_behind_the_gate_and_the_reply_permission(client, cast):
    login(client, cast.erin)  # Support: the Sales conversation is not hers
    assert upload(client, cast.conversation, PDF, "x.pdf").status_code == 404
    login(client, cast.carol)
    assert upload(client, cast.conversation, PDF, "x.pdf").status_code == 404
    cast.bob.role.permissions = []
    cast.bob.role.save()
    login(client, cast.bob)
    assert upload(client, cast.conversation, PDF, "x.pdf").status_code == 403
    assert not Attachment.objects.exists()


def test_an_upload_without_a_file_is_a_400_in_the_apis_shape(client, cast):
    login(client, cast.bob)
    response = client.post(f"{API}{cast.conversation.pk}/attachments", {"other": "x"})
    assert response.status_code == 400 and response.json()["error"]["fields"]["file"]
    response = client.post(f"{API}{cast.conversation.pk}/attachments", {"file": "x"}, content_type="application/json")
    assert response.status_code == 415 and set(response.json()["error"]) == {"code", "message"}


# --- The file view ----------------------------------------------------------------------------


def test_an_image_is_served_inline_to_those_who_may_see_the_conversation(cast):
    attachment = sent_with_a_reply(cast)
    url = attachments.link(attachment)
    served = as_employee(cast.bob).get(url)
    assert served.status_code == 200
    assert b"".join(served.streaming_content) == PNG
    assert served["Content-Type"] == "image/png"
    assert served["Content-Disposition"] == 'inline; filename="cat.png"'
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Cache-Control"].startswith("private")
    assert as_employee(cast.alice).get(url).status_code == 200
    for outsider in (cast.erin, cast.dave, cast.carol):
        assert as_employee(outsider).get(url).status_code == 404, outsider
    assert Client().get(url).status_code == 404  # nobody signed in
    # Dave sees what is assigned to him.
    actions.assign(cast.conversation, by=cast.alice, assignee=cast.dave)
    assert as_employee(cast.dave).get(url).status_code == 200


def test_a_document_is_a_download_with_its_own_name(cast):
    attachment = sent_with_a_reply(cast, PDF, "Счёт №1.pdf")
    served = as_employee(cast.bob).get(attachments.link(attachment))
    assert served["Content-Type"] == "application/pdf"
    disposition = served["Content-Disposition"]
    assert disposition.startswith("attachment; filename*=utf-8''")
    assert unquote(disposition.split("''", 1)[1]) == "Счёт №1.pdf"


def test_a_personal_api_key_opens_a_link_too(cast):
    attachment = sent_with_a_reply(cast)
    _, key = admin_actions.create_api_token(by=cast.bob, name="files")
    url = attachments.link(attachment)
    assert Client().get(url, headers=bearer(key)).status_code == 200
    _, erins = admin_actions.create_api_token(by=cast.erin, name="files")
    assert Client().get(url, headers=bearer(erins)).status_code == 404
    assert Client().get(url, headers={"Authorization": "Bearer sc_nope_nope"}).status_code == 404


def test_a_forged_or_expired_link_serves_nothing(cast, settings, monkeypatch):
    attachment = sent_with_a_reply(cast)
    bob = as_employee(cast.bob)
    url = attachments.link(attachment)
    token = url.split("/")[2]
    forged = signing.dumps({"a": attachment.pk, "v": None}, salt="another salt", compress=False)
    assert bob.get(url.replace(token, forged)).status_code == 404
    assert bob.get(url.replace(token, token[:-2] + "xx")).status_code == 404
    settings.ATTACHMENT_LINK_SECONDS = 60
    later = time.time() + 61
    monkeypatch.setattr(signing.time, "time", lambda: later)
    expired = bob.get(url)
    assert expired.status_code == 410 and b"expired" in expired.content


def test_an_unsent_upload_is_its_uploaders_alone(cast):
    attachment = actions.upload_attachment(
        cast.conversation, stream=io.BytesIO(PNG), name="a.png", by_employee=cast.bob
    )
    url = attachments.link(attachment)
    assert as_employee(cast.bob).get(url).status_code == 200
    assert as_employee(cast.alice).get(url).status_code == 404


def test_a_deleted_messages_files_are_hidden_with_it(cast):
    attachment = sent_with_a_reply(cast)
    url = attachments.link(attachment)
    actions.delete_message(attachment.message, by=cast.alice)
    assert as_employee(cast.bob).get(url).status_code == 404  # an agent can't see deleted messages
    assert as_employee(cast.alice).get(url).status_code == 200  # an admin may
    listed = as_employee(cast.bob).get(f"{API}{cast.conversation.pk}/messages/").json()["results"]
    assert [m["attachments"] for m in listed if m["id"] == attachment.message_id] == [[]]


def test_a_visitors_link_serves_only_their_own_conversations_sent_files(cast):
    visitor = cast.conversation.contact_id
    sent = sent_with_a_reply(cast)
    assert Client().get(attachments.link(sent, visitor_contact_id=visitor)).status_code == 200
    assert Client().get(attachments.link(sent, visitor_contact_id=visitor + 1000)).status_code == 404
    # A note's file is the team's alone; an agent's unsent upload nobody else's.
    note_file = actions.upload_attachment(cast.conversation, stream=io.BytesIO(PDF), name="n.pdf", by_employee=cast.bob)
    actions.add_note(cast.conversation, by=cast.bob, body="internal", attachment_ids=[note_file.pk])
    unsent = actions.upload_attachment(cast.conversation, stream=io.BytesIO(PDF), name="u.pdf", by_employee=cast.bob)
    for hidden in (note_file, unsent):
        assert Client().get(attachments.link(hidden, visitor_contact_id=visitor)).status_code == 404
    actions.delete_message(sent.message, by=cast.alice)
    assert Client().get(attachments.link(sent, visitor_contact_id=visitor)).status_code == 404


def test_a_file_that_is_not_ready_is_not_served(cast):
    attachment = sent_with_a_reply(cast)
    Attachment.objects.filter(pk=attachment.pk).update(status="pending")
    assert as_employee(cast.bob).get(attachments.link(attachment)).status_code == 404
