"""Files from website visitors: the upload endpoint, sending them over the socket, and what the
visitor sees (their own links, never an employee's; nothing of a deleted message).

Real PostgreSQL and Redis (the rate limits), the real ASGI app for the sockets, files in a
storage of their own under the test's temporary directory.
"""

from __future__ import annotations

import io
import json
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from helpdesk.conversations import actions, attachments
from helpdesk.conversations.adapters import adapter_for
from helpdesk.conversations.models import Attachment, Contact, ContactIdentity, Conversation, Message
from helpdesk.conversations.snapshots import conversation_summary, message_data
from integrations.widget.visitors import issue_token
from smartchat.asgi import application
from tests.conftest import ACME_ORIGIN

QUIET = 0.3


def claim_of(url: str) -> attachments.LinkClaim | None:
    """What a file link says: ``/files/<token>/<name>``."""
    parts = urlsplit(url).path.split("/")
    assert parts[1] == "files", url
    return attachments.read_link(parts[2])


def png(width: int = 4, height: int = 3) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PROGRAM = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200  # a Windows program


@pytest.fixture(autouse=True)
def _files(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "attachments")},
        },
    }


def upload(client, channel, token, data=None, name="photo.png", *, origin=ACME_ORIGIN, lang=None, files=None, **extra):
    headers = {"origin": origin} if origin else {}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if lang:
        headers["accept-language"] = lang
    payload = files if files is not None else {"file": SimpleUploadedFile(name, png() if data is None else data)}
    return client.post(f"/widget/v1/{channel.public_key}/attachments", payload, headers=headers, **extra)


def stored() -> tuple[int, int, int]:
    return Attachment.objects.count(), Contact.objects.count(), Message.objects.count()


# --- The upload endpoint ------------------------------------------------------------------------


def test_an_upload_is_kept_for_the_visitor_until_a_message_carries_it(client, cast):
    token, visitor_id = issue_token(cast.widget)
    response = upload(client, cast.widget, token, name="../../etc/Photo.PNG")
    assert response.status_code == 201, response.content
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN
    data = response.json()
    assert data["name"] == "Photo.PNG" and data["content_type"] == "image/png" and data["image"] is True
    attachment = Attachment.objects.get(pk=data["id"])
    contact = ContactIdentity.objects.get(channel=cast.widget, external_id=visitor_id).contact
    # Held on the visitor: a new visitor has no conversation, and their message will decide it.
    assert (attachment.uploaded_by_contact, attachment.conversation, attachment.message) == (contact, None, None)
    assert attachment.company_id == cast.acme.pk and attachment.size == len(png())
    assert not Conversation.objects.filter(contact=contact).exists()
    with attachment.file.open("rb") as handle:
        assert handle.read() == png()


def test_a_returning_visitors_upload_is_held_on_their_contact_too(client, cast):
    token, _ = issue_token(cast.widget, "visitor-1")  # cast.conversation is theirs
    data = upload(client, cast.widget, token, b"order,qty\n1,2\n", "order.csv").json()
    attachment = Attachment.objects.get(pk=data["id"])
    assert attachment.uploaded_by_contact_id == cast.conversation.contact_id and attachment.conversation is None
    assert data["content_type"] == "text/csv" and data["image"] is False


def test_a_file_over_the_size_limit_is_413_with_its_name_and_stores_nothing(client, cast, settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    token, _ = issue_token(cast.widget)
    before = stored()
    response = upload(client, cast.widget, token, b"x" * 1001, "big.txt")
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "file_too_large" and "big.txt" in error["message"] and "1000 B" in error["message"]
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN  # the widget can read why
    assert stored() == before


def test_a_body_declared_past_the_limit_is_413_before_it_is_read(client, cast, settings):
    settings.ATTACHMENT_MAX_BYTES = 1000
    token, _ = issue_token(cast.widget)
    before = stored()
    response = upload(client, cast.widget, token, b"x" * 10, "small.txt", CONTENT_LENGTH=str(10 * 1024 * 1024))
    assert response.status_code == 413 and response.json()["error"]["code"] == "file_too_large"
    assert stored() == before


def test_a_body_of_no_declared_length_is_411(client, cast):
    token, _ = issue_token(cast.widget)
    response = upload(client, cast.widget, token, CONTENT_LENGTH="")
    assert response.status_code == 411 and response.json()["error"]["code"] == "length_required"


def test_a_type_not_accepted_is_415_whatever_its_name_says(client, cast):
    token, _ = issue_token(cast.widget)
    before = stored()
    response = upload(client, cast.widget, token, PROGRAM, "holiday.jpg")
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "file_type_not_allowed" and "holiday.jpg" in error["message"]
    assert stored() == before


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({"file": SimpleUploadedFile("empty.txt", b"")}, "file_empty"),
        ({"other": SimpleUploadedFile("a.png", b"\x89PNG")}, "bad_upload"),
        ({"file": [SimpleUploadedFile("a.txt", b"a"), SimpleUploadedFile("b.txt", b"b")]}, "bad_upload"),
        ({"file": "just text"}, "bad_upload"),
    ],
    ids=["empty", "no file field", "two files", "a text field"],
)
def test_anything_but_one_readable_file_is_400(client, cast, files, code):
    token, _ = issue_token(cast.widget)
    before = stored()
    response = upload(client, cast.widget, token, files=files)
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert stored() == before


def test_a_malformed_multipart_body_is_400(client, cast):
    token, _ = issue_token(cast.widget)
    response = client.post(
        f"/widget/v1/{cast.widget.public_key}/attachments",
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\nno end',
        content_type="multipart/form-data; boundary=xyz",
        headers={"origin": ACME_ORIGIN, "authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    json_body = client.post(
        f"/widget/v1/{cast.widget.public_key}/attachments",
        json.dumps({"file": "x"}),
        content_type="application/json",
        headers={"origin": ACME_ORIGIN, "authorization": f"Bearer {token}"},
    )
    assert json_body.status_code == 400 and json_body.json()["error"]["code"] == "bad_upload"
    assert not Attachment.objects.exists()


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer forged", "Basic abc", "Token x"])
def test_an_upload_without_a_valid_token_is_401(client, cast, authorization):
    headers = {"origin": ACME_ORIGIN}
    if authorization:
        headers["authorization"] = authorization
    response = client.post(
        f"/widget/v1/{cast.widget.public_key}/attachments",
        {"file": SimpleUploadedFile("a.png", png())},
        headers=headers,
    )
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_invalid"
    assert not Attachment.objects.exists()


def test_a_token_of_another_widget_is_401(client, cast):
    token, _ = issue_token(cast.globex_widget, "visitor-1")
    assert upload(client, cast.widget, token).status_code == 401
    assert not Attachment.objects.exists()


def test_refusals_speak_the_visitors_language(client, cast):
    response = upload(client, cast.widget, "forged", lang="ru")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Ваша сессия чата недействительна."


@pytest.mark.parametrize(("origin", "code"), [("https://evil.test", "origin_denied"), (None, "origin_missing")])
def test_other_origins_are_refused_without_cors(client, cast, origin, code):
    token, _ = issue_token(cast.widget)
    response = upload(client, cast.widget, token, origin=origin)
    assert response.status_code == 403 and response.json()["error"]["code"] == code
    assert "Access-Control-Allow-Origin" not in response
    assert not Attachment.objects.exists()


def test_the_preflight_allows_the_authorization_header(client, cast):
    response = client.options(f"/widget/v1/{cast.widget.public_key}/attachments", headers={"origin": ACME_ORIGIN})
    assert response.status_code == 204
    assert "Authorization" in response["Access-Control-Allow-Headers"]
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN


def test_a_flood_of_uploads_is_429_and_stores_nothing_more(client, cast, settings):
    settings.RATE_LIMIT_WIDGET_UPLOADS_PER_VISITOR = "2/minute"
    token, _ = issue_token(cast.widget)
    assert [upload(client, cast.widget, token).status_code for _ in range(2)] == [201, 201]
    response = upload(client, cast.widget, token)
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limited"
    assert int(response["Retry-After"]) > 0 and response["Access-Control-Allow-Origin"] == ACME_ORIGIN
    assert Attachment.objects.count() == 2
    # Another visitor from the same address is counted by the address limit only.
    other, _ = issue_token(cast.widget)
    assert upload(client, cast.widget, other).status_code == 201


def test_the_session_tells_the_widget_the_file_limits(client, cast, settings):
    settings.ATTACHMENT_MAX_BYTES, settings.ATTACHMENTS_PER_MESSAGE = 12345, 3
    response = client.post(
        f"/widget/v1/{cast.widget.public_key}/session",
        "{}",
        content_type="application/json",
        headers={"origin": ACME_ORIGIN},
    )
    files = response.json()["settings"]["files"]
    assert files["max_bytes"] == 12345 and files["max_count"] == 3 and "image/png" in files["types"]


# --- Sending over the socket ---------------------------------------------------------------------


async def visitor_socket(channel, visitor_id: str) -> WebsocketCommunicator:
    token, _ = await sync_to_async(issue_token)(channel, visitor_id)
    ws = WebsocketCommunicator(
        application, f"/ws/widget/{channel.public_key}/", headers=[(b"origin", ACME_ORIGIN.encode())]
    )
    assert (await ws.connect())[0]
    await ws.send_json_to({"type": "auth", "token": token})
    assert (await ws.receive_json_from())["type"] == "hello"
    return ws


def upload_for(channel, visitor_id: str, data: bytes | None = None, name: str = "photo.png") -> int:
    token, _ = issue_token(channel, visitor_id)
    response = upload(Client(), channel, token, data, name)
    assert response.status_code == 201, response.content
    return response.json()["id"]


async def replies(ws, count: int) -> dict[str, dict]:
    frames = [await ws.receive_json_from() for _ in range(count)]
    return {frame["type"]: frame for frame in frames}


pytestmark_sockets = pytest.mark.django_db(transaction=True)


@pytestmark_sockets
async def test_a_visitor_sends_files_and_the_agent_sees_them(tcast):
    image = await database_sync_to_async(upload_for)(tcast.widget, "new-visitor")
    sheet = await database_sync_to_async(upload_for)(tcast.widget, "new-visitor", b"a,b\n1,2\n", "list.csv")
    ws = await visitor_socket(tcast.widget, "new-visitor")
    await ws.send_json_to(
        {"type": "message", "body": "Here they are", "client_id": "f" * 32, "attachments": [image, sheet]}
    )
    got = await replies(ws, 2)
    message_id = got["ack"]["message_id"]
    shown = got["message"]["message"]
    contact_id = await database_sync_to_async(
        lambda: ContactIdentity.objects.get(channel=tcast.widget, external_id="new-visitor").contact_id
    )()
    assert [(f["id"], f["name"], f["image"]) for f in shown["attachments"]] == [
        (image, "photo.png", True),
        (sheet, "list.csv", False),
    ]
    # The visitor's links name the visitor: never an employee's link.
    for file in shown["attachments"]:
        claim = claim_of(file["url"])
        assert (claim.attachment_id, claim.visitor_contact_id) == (file["id"], contact_id)
    await ws.disconnect()

    def check():
        message = Message.objects.get(pk=message_id)
        bound = list(Attachment.objects.filter(message=message).order_by("pk"))
        assert [a.pk for a in bound] == [image, sheet]
        assert all(a.conversation_id == message.conversation_id for a in bound)
        assert message.conversation.contact_id == contact_id
        # The agent's API thread shows the files, with employees' links.
        api = Client()
        api.force_login(tcast.alice.user)
        thread = api.get(f"/api/v1/conversations/{message.conversation_id}/messages/").json()
        rows = thread["results"] if isinstance(thread, dict) else thread
        files = next(row for row in rows if row["id"] == message_id)["attachments"]
        assert [f["name"] for f in files] == ["photo.png", "list.csv"]
        assert all(claim_of(f["url"]).visitor_contact_id is None for f in files)

    await database_sync_to_async(check)()


@pytestmark_sockets
async def test_a_message_of_files_only_is_sent_and_previewed_by_name(tcast):
    image = await database_sync_to_async(upload_for)(tcast.widget, "visitor-1")
    ws = await visitor_socket(tcast.widget, "visitor-1")
    await ws.send_json_to({"type": "message", "body": "", "client_id": "e" * 32, "attachments": [image]})
    got = await replies(ws, 2)
    assert got["message"]["message"]["body"] == "" and len(got["message"]["message"]["attachments"]) == 1
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=tcast.conversation.pk)
    assert conversation.last_message_preview == "📎 photo.png"
    # Resending the same frame (a reconnect) stores it once, and binds nothing twice.
    await ws.send_json_to({"type": "message", "body": "", "client_id": "e" * 32, "attachments": [image]})
    assert (await ws.receive_json_from())["message_id"] == got["ack"]["message_id"]
    await ws.disconnect()


async def refused(ws, frame: dict, code: str) -> None:
    await ws.send_json_to(frame)
    error = await ws.receive_json_from()
    assert error["type"] == "error" and error["code"] == code, error
    assert error["client_id"] == frame["client_id"]
    assert await ws.receive_nothing(timeout=QUIET)


def counts(*ids: int) -> tuple[int, int]:
    return Message.objects.count(), Attachment.objects.filter(pk__in=ids, message__isnull=False).count()


@pytestmark_sockets
async def test_another_visitors_upload_a_forged_id_or_a_sent_one_is_refused_and_nothing_is_stored(tcast, settings):
    # A refused message spends none of the visitor's new conversations: one is allowed, after five refusals.
    settings.RATE_LIMIT_WIDGET_CONVERSATIONS_PER_VISITOR = "1/hour"
    mine = await database_sync_to_async(upload_for)(tcast.widget, "visitor-a")
    theirs = await database_sync_to_async(upload_for)(tcast.widget, "visitor-b")
    other_company = await database_sync_to_async(upload_for)(tcast.globex_widget, "visitor-a")
    ws = await visitor_socket(tcast.widget, "visitor-a")
    before = await database_sync_to_async(counts)(mine, theirs, other_company)
    for ids in ([theirs], [mine, theirs], [other_company], [mine, 2**62], [0]):
        await refused(
            ws, {"type": "message", "body": "hi", "client_id": "a" * 32, "attachments": ids}, "bad_attachment"
        )
    assert await database_sync_to_async(counts)(mine, theirs, other_company) == before
    # Their own upload goes, once; sending it again is refused.
    await ws.send_json_to({"type": "message", "body": "mine", "client_id": "b" * 32, "attachments": [mine]})
    assert set(await replies(ws, 2)) == {"ack", "message"}
    await refused(
        ws, {"type": "message", "body": "again", "client_id": "c" * 32, "attachments": [mine]}, "bad_attachment"
    )
    await ws.disconnect()


@pytestmark_sockets
async def test_more_files_than_a_message_carries_are_refused(tcast, settings):
    settings.ATTACHMENTS_PER_MESSAGE = 2
    ids = [await database_sync_to_async(upload_for)(tcast.widget, "visitor-1") for _ in range(3)]
    ws = await visitor_socket(tcast.widget, "visitor-1")
    before = await database_sync_to_async(counts)(*ids)
    await refused(ws, {"type": "message", "body": "x", "client_id": "a" * 32, "attachments": ids}, "too_many_files")
    assert await database_sync_to_async(counts)(*ids) == before
    await ws.disconnect()


@pytestmark_sockets
@pytest.mark.parametrize(
    "attachments", ["1", 1, {"id": 1}, [True], [-1], ["1"], [1.5], [2**63], [None], list(range(1, 102))]
)
async def test_malformed_attachment_lists_are_refused(tcast, attachments):
    ws = await visitor_socket(tcast.widget, "visitor-1")
    before = await database_sync_to_async(Message.objects.count)()
    frame = {"type": "message", "body": "x", "client_id": "a" * 32, "attachments": attachments}
    await refused(ws, frame, "bad_attachments")
    assert await database_sync_to_async(Message.objects.count)() == before
    await ws.disconnect()


@pytestmark_sockets
async def test_an_empty_message_without_files_is_still_refused(tcast):
    ws = await visitor_socket(tcast.widget, "visitor-1")
    await refused(ws, {"type": "message", "body": " ", "client_id": "a" * 32, "attachments": []}, "empty")
    await ws.disconnect()


# --- What the visitor sees -----------------------------------------------------------------------


def send_with_file(channel, visitor_id: str, body: str = "see attached") -> Message:
    from integrations.widget import inbound

    attachment = upload_for(channel, visitor_id)
    return inbound.receive(channel, visitor_id, "127.0.0.1", body=body, client_id="h" * 16, attachments=[attachment])


def history(channel, visitor_id: str) -> list[dict]:
    token, _ = issue_token(channel, visitor_id)
    response = Client().post(
        f"/widget/v1/{channel.public_key}/session",
        json.dumps({"token": token}),
        content_type="application/json",
        headers={"origin": ACME_ORIGIN},
    )
    return response.json()["messages"]


def test_history_shows_the_visitors_files_with_their_links_and_hides_a_deleted_messages(client, cast):
    message = send_with_file(cast.widget, "visitor-1")
    [shown] = [m for m in history(cast.widget, "visitor-1") if m["id"] == message.pk]
    [file] = shown["attachments"]
    claim = claim_of(file["url"])
    assert (claim.attachment_id, claim.visitor_contact_id) == (file["id"], cast.conversation.contact_id)
    assert set(file) == {"id", "name", "content_type", "size", "image", "url"}
    actions.delete_message(message, by=cast.alice)
    assert message.pk not in [m["id"] for m in history(cast.widget, "visitor-1")]
    assert all(m["attachments"] == [] for m in history(cast.widget, "visitor-1"))


def test_pushes_to_the_visitor_carry_visitor_links_and_notes_push_nothing(client, cast):
    message = send_with_file(cast.widget, "visitor-1")
    message = Message.objects.prefetch_related("attachments").get(pk=message.pk)
    conversation = conversation_summary(Conversation.objects.select_related("channel").get(pk=message.conversation_id))
    event = {"type": "message.created", "payload": {"conversation": conversation, "message": message_data(message)}}
    assert claim_of(event["payload"]["message"]["attachments"][0]["url"]).visitor_contact_id is None  # the employees'
    [(_group, push)] = adapter_for("widget").socket_sends(event)
    [file] = push["message"]["attachments"]
    assert claim_of(file["url"]).visitor_contact_id == cast.conversation.contact_id
    note = {**event, "payload": {**event["payload"], "message": {**event["payload"]["message"], "kind": "note"}}}
    assert adapter_for("widget").socket_sends(note) == []
    # A deleted message is taken back, with no file in what is sent.
    deleted = {"type": "message.deleted", "payload": event["payload"]}
    [(_group, removal)] = adapter_for("widget").socket_sends(deleted)
    assert removal == {"type": "visitor.removed", "message_id": message.pk}


def test_a_file_not_yet_stored_is_not_shown_to_the_visitor(client, cast):
    message = send_with_file(cast.widget, "visitor-1")
    Attachment.objects.filter(message=message).update(status="pending")
    [shown] = [m for m in history(cast.widget, "visitor-1") if m["id"] == message.pk]
    assert shown["attachments"] == []


def test_a_blocked_visitors_files_are_kept_with_their_message_unseen(client, cast):
    actions.block_contact(cast.conversation.contact, by=cast.alice, reason="spam")
    message = send_with_file(cast.widget, "visitor-1", body="")
    assert message.while_blocked and Attachment.objects.get(message=message).conversation_id == message.conversation_id


# --- The links themselves (served by the file view of issue 9) ---------------------------------------


def test_a_visitor_link_opens_their_own_file_only_and_not_after_the_message_is_deleted(client, cast):
    message = send_with_file(cast.widget, "visitor-1")
    [file] = next(m for m in history(cast.widget, "visitor-1") if m["id"] == message.pk)["attachments"]
    response = client.get(file["url"])
    assert response.status_code == 200 and b"".join(response.streaming_content) == png()
    # A link made for another visitor's contact does not open this visitor's file.
    other = send_with_file(cast.globex_widget, "globex-visitor")
    [theirs] = next(m for m in history(cast.globex_widget, "globex-visitor") if m["id"] == other.pk)["attachments"]
    from helpdesk.conversations.attachments import link

    forged = link(Attachment.objects.get(pk=file["id"]), visitor_contact_id=other.conversation.contact_id)
    assert client.get(forged).status_code == 404
    assert client.get(theirs["url"]).status_code == 200
    actions.delete_message(message, by=cast.alice)
    assert client.get(file["url"]).status_code == 404


def test_storage_is_the_tests_own(cast, tmp_path):
    assert str(tmp_path) in storages["attachments"].location
