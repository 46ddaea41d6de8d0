"""Bad input on the public endpoints channels added: Telegram's webhook, VK's Callback API, the
widget's upload and the file links.

An outsider can send any of it. The rule (docs/channels.md): a provider's webhook answers a
logged 200 (so the provider does not retry garbage forever) and stores nothing it can't hold;
the widget and the file links answer a clear 4xx. Never a 500, never a traceback in the log.
Hand-picked shapes first, then hypothesis for the shapes nobody thought of.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk.conversations import attachments, secrets
from helpdesk.conversations.models import Attachment, Channel, Contact, Message
from integrations.telegram.setup import webhook_secret
from integrations.widget.visitors import issue_token
from tests.conftest import ACME_ORIGIN
from tests.live import captured_logs
from tests.test_widget_attachments import png

TOKEN = "123456789:AAEhBOweik9ai2o4sbVX-wQzSOMESECRETTAIL"
GROUP = 4242
SECRET = "callback-secret-value"
HUGE = 10**30  # past any database integer

# Any JSON value, the awkward ones included: NUL and lone surrogates (which JSON allows and
# PostgreSQL can't hold), huge numbers, nesting.
characters = st.one_of(st.characters(), st.sampled_from(["\x00", "\ud800", "\udfff"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-HUGE, max_value=HUGE) | st.text(characters, max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
HYPOTHESIS = settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def outsider():
    """A client that answers a 500 as a response (as a real server would) instead of raising."""
    return Client(raise_request_exception=False)


def no_trouble(lines: list[str]) -> None:
    assert not [line for line in lines if "Traceback" in line or " ERROR " in line], "\n".join(lines)


# --- Telegram's webhook ------------------------------------------------------------------------


@pytest.fixture
def telegram(cast, settings):
    settings.TELEGRAM_API_URL = "http://127.0.0.1:9"  # nothing may reach out from a webhook request
    return Channel.objects.create(
        company=cast.acme,
        kind="telegram",
        name="Acme bot",
        team=cast.sales,
        settings={"mode": "webhook"},
        secrets=secrets.encrypt({"bot_token": TOKEN}),
    )


USER = {"id": 5, "is_bot": False, "first_name": "Ann"}
CHAT = {"id": 5, "type": "private", "first_name": "Ann"}
MESSAGE = {"message_id": 1, "date": 1700000000, "chat": CHAT, "from": USER, "text": "hi"}


def press(**fields):
    return {"callback_query": {"id": "77", "from": USER, "chat_instance": "c", **fields}}


ODD_UPDATES = {
    "press without a message": press(data="consent:accept:1"),
    "press with a huge version": press(data=f"consent:accept:{HUGE}", message=MESSAGE),
    "press without data": press(data=None, message=MESSAGE),
    "press on an inaccessible message": press(data="consent:", message={"message_id": 1, "date": 0, "chat": CHAT}),
    "press of a game": press(game_short_name="g"),
    "press in a huge chat": press(data="consent:decline:1", message={**MESSAGE, "chat": {**CHAT, "id": HUGE}}),
    "press that is a list": {"callback_query": []},
    "edit of a message never stored": {"edited_message": {**MESSAGE, "message_id": 999, "edit_date": 1700000001}},
    "edit in a group never stored": {
        "edited_message": {**MESSAGE, "chat": {"id": -100, "type": "supergroup", "title": "g"}, "edit_date": 1}
    },
    "edit that is text": {"edited_message": "x"},
    "edit with a broken character": {"edited_message": {**MESSAGE, "text": "\ud800"}},
    "message date past any clock": {"message": {**MESSAGE, "date": HUGE}},
    "document of odd facts": {
        "message": {
            **MESSAGE,
            "document": {"file_id": "\x00", "file_unique_id": "u", "file_name": "\x00\ud800", "file_size": HUGE},
        }
    },
}


@pytest.mark.parametrize("update", ODD_UPDATES.values(), ids=ODD_UPDATES.keys())
def test_odd_telegram_updates_are_acknowledged_without_trouble(outsider, telegram, update):
    headers = {"X-Telegram-Bot-Api-Secret-Token": webhook_secret(telegram)}
    with captured_logs(logging.INFO) as lines:
        response = outsider.post(
            f"/hooks/telegram/{telegram.public_key}/",
            json.dumps({"update_id": 1, **update}),
            content_type="application/json",
            headers=headers,
        )
    assert response.status_code == 200
    no_trouble(lines)
    for attachment in Attachment.objects.filter(message__conversation__channel=telegram):
        assert attachment.size is None and "\x00" not in json.dumps(attachment.source)


@pytest.mark.parametrize(
    "body",
    [b"{" * 10, b"\xff\xfe", b"x" * 1_000_001, b'{"update_id": 1, "message": "' + b"x" * 3_000_000 + b'"}'],
    ids=["not JSON", "not UTF-8", "just over the limit", "past Django's upload limit"],
)
def test_a_malformed_or_huge_telegram_body_is_a_logged_200(outsider, telegram, body):
    headers = {"X-Telegram-Bot-Api-Secret-Token": webhook_secret(telegram)}
    with captured_logs(logging.INFO) as lines:
        response = outsider.post(
            f"/hooks/telegram/{telegram.public_key}/", body, content_type="application/json", headers=headers
        )
    assert response.status_code == 200
    assert any("telegram channel" in line for line in lines)
    no_trouble(lines)
    assert not Message.objects.filter(conversation__channel=telegram).exists()


def test_random_telegram_updates_never_trouble_the_webhook(outsider, telegram):
    headers = {"X-Telegram-Bot-Api-Secret-Token": webhook_secret(telegram)}
    kinds = st.sampled_from(["message", "edited_message", "callback_query"])
    shapes = st.one_of(
        json_values.map(lambda value: {"message": {**MESSAGE, "text": value}}),
        st.dictionaries(st.sampled_from(list(MESSAGE)), json_values).map(lambda odd: {"message": {**MESSAGE, **odd}}),
        st.tuples(kinds, json_values).map(lambda pair: {pair[0]: pair[1]}),
        json_values.map(lambda value: press(data=value, message=MESSAGE)),
    )

    @HYPOTHESIS
    @given(update=shapes, update_id=json_values)
    def run(update, update_id):
        response = outsider.post(
            f"/hooks/telegram/{telegram.public_key}/",
            json.dumps({"update_id": update_id, **update}),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 200

    with captured_logs(logging.INFO) as lines:
        run()
    no_trouble(lines)


# --- VK's Callback API -------------------------------------------------------------------------


@pytest.fixture
def vk(cast, settings):
    settings.VK_API_URL = "http://127.0.0.1:9/method"  # users.get fails, as VK may: the name is left out
    return Channel.objects.create(
        company=cast.acme,
        kind="vk",
        name="Community",
        team=cast.sales,
        settings={"group_id": GROUP, "mode": "callback", "confirmation": "abc"},
        secrets=secrets.encrypt({"access_token": "vk1.a.token", "secret": SECRET}),
    )


def event(kind: str, obj) -> dict:
    return {"group_id": GROUP, "type": kind, "event_id": "e1", "v": "5.199", "object": obj, "secret": SECRET}


VK_MESSAGE = {"date": 1, "from_id": 7, "id": 1, "out": 0, "peer_id": 7, "conversation_message_id": 1, "text": "hi"}


def vk_post(client, channel, body):
    raw = body if isinstance(body, bytes) else json.dumps(body)
    return client.post(f"/hooks/vk/{channel.public_key}/", raw, content_type="application/json")


ODD_EVENTS = {
    "edit of nothing": event("message_edit", None),
    "edit that is a list": event("message_edit", []),
    "edit of a message never stored": event("message_edit", {"peer_id": 7, "conversation_message_id": 99, "text": "x"}),
    "edit with huge ids": event("message_edit", {"peer_id": HUGE, "conversation_message_id": HUGE, "text": "x"}),
    "edit with odd attachments": event(
        "message_edit", {"peer_id": 7, "conversation_message_id": 1, "text": "\ud800", "attachments": "x"}
    ),
}


@pytest.mark.parametrize("body", ODD_EVENTS.values(), ids=ODD_EVENTS.keys())
def test_odd_vk_edits_are_ok_and_change_nothing(outsider, vk, body):
    with captured_logs(logging.INFO) as lines:
        response = vk_post(outsider, vk, body)
    assert (response.status_code, response.content) == (200, b"ok")
    assert lines and not Message.objects.filter(conversation__channel=vk).exists()
    no_trouble(lines)


MALFORMED_ATTACHMENTS = {
    "not objects": [None, 5, "x", {"type": None}, {"type": {"a": 1}}],
    "a photo of odd sizes": [{"type": "photo", "photo": {"sizes": [{"url": 5, "width": "w"}, 5], "orig_photo": 5}}],
    "a doc of odd facts": [{"type": "doc", "doc": {"title": ["x"], "ext": {"a": 1}, "size": HUGE, "url": 5}}],
    "a doc of a negative size": [{"type": "doc", "doc": {"title": "a" * 10_000, "ext": "b" * 10_000, "size": -1}}],
    "a doc whose texts can't be stored": [
        {"type": "doc", "doc": {"title": "\ud800.pdf", "url": "http://\x00/", "owner_id": "\x00"}}
    ],
    "a voice with a NUL link": [{"type": "audio_message", "audio_message": {"link_ogg": "\x00"}}],
    "a huge type": [{"type": "x" * 10_000, "x" * 10_000: {}}],
}


@pytest.mark.parametrize("found", MALFORMED_ATTACHMENTS.values(), ids=MALFORMED_ATTACHMENTS.keys())
def test_a_vk_message_with_malformed_attachments_is_stored_with_what_can_be_held(outsider, vk, found):
    with captured_logs(logging.INFO) as lines:
        response = vk_post(outsider, vk, event("message_new", {"message": {**VK_MESSAGE, "attachments": found}}))
    assert (response.status_code, response.content) == (200, b"ok")
    no_trouble(lines)
    (message,) = Message.objects.filter(conversation__channel=vk)
    assert message.body == "hi"
    for attachment in message.attachments.all():
        assert attachment.size is None
        source = json.dumps(attachment.source)
        assert "\\u0000" not in source and "\\ud800" not in source and len(source) < 20_000


def test_random_vk_events_never_trouble_the_callback(outsider, vk):
    attachment = st.one_of(
        json_values,
        st.tuples(st.sampled_from(["photo", "doc", "audio_message", "sticker"]), json_values).map(
            lambda pair: {"type": pair[0], pair[0]: pair[1]}
        ),
    )
    numbers = iter(range(10, 10_000))

    @HYPOTHESIS
    @given(kind=st.sampled_from(["message_new", "message_edit"]), found=st.lists(attachment, max_size=3))
    def run(kind, found):
        message = {**VK_MESSAGE, "conversation_message_id": next(numbers), "attachments": found}
        response = vk_post(outsider, vk, event(kind, {"message": message} if kind == "message_new" else message))
        assert (response.status_code, response.content) == (200, b"ok")

    with captured_logs(logging.INFO) as lines:
        run()
    no_trouble(lines)


@pytest.mark.parametrize("body", [b"\xff\xfe", b"x" * 300_000, b"[" * 10_000, b'{"a": "' + b"x" * 3_000_000 + b'"}'])
def test_a_malformed_or_huge_vk_body_is_ok(outsider, vk, body):
    with captured_logs(logging.INFO) as lines:
        response = vk_post(outsider, vk, body)
    assert (response.status_code, response.content) == (200, b"ok")
    assert any("vk channel" in line for line in lines)
    no_trouble(lines)


# --- The widget's upload -----------------------------------------------------------------------


@pytest.fixture
def widget(cast, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "attachments")},
        },
    }
    return cast.widget


def stored() -> tuple[int, int, int]:
    return Attachment.objects.count(), Contact.objects.count(), Message.objects.count()


def multipart(*parts: tuple[str, str, bytes]) -> bytes:
    body = b""
    for field, name, data in parts:
        body += f'--x\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n\r\n'.encode() + data
        body += b"\r\n"
    return body + b"--x--\r\n"


UPLOADS = {
    "no body": (dict(data=b"", content_type="multipart/form-data; boundary=x"), 411, "length_required"),
    "not multipart": (dict(data=b"hello", content_type="text/plain"), 400, "bad_upload"),
    "JSON": (dict(data=b'{"file": "x"}', content_type="application/json"), 400, "bad_upload"),
    "no boundary": (dict(data=b"--\r\n", content_type="multipart/form-data"), 400, "bad_upload"),
    "a huge boundary": (dict(data=b"--\r\n", content_type="multipart/form-data; boundary=" + "x" * 5000), 400, None),
    "two files in the field": (
        dict(
            data=multipart(("file", "a.png", png()), ("file", "b.png", png())),
            content_type="multipart/form-data; boundary=x",
        ),
        400,
        "bad_upload",
    ),
    "a second file elsewhere": (
        dict(
            data=multipart(("file", "a.png", png()), ("other", "b.png", png())),
            content_type="multipart/form-data; boundary=x",
        ),
        400,
        "bad_upload",
    ),
    "a giant declared length": (
        dict(
            data=multipart(("file", "a.png", png())),
            content_type="multipart/form-data; boundary=x",
            CONTENT_LENGTH="99999999999999",
        ),
        413,
        "file_too_large",
    ),
    "a length that is not a number": (
        dict(
            data=multipart(("file", "a.png", png())),
            content_type="multipart/form-data; boundary=x",
            CONTENT_LENGTH="abc",
        ),
        411,
        "length_required",
    ),
    "an empty file": (
        dict(data=multipart(("file", "a.png", b"")), content_type="multipart/form-data; boundary=x"),
        400,
        "file_empty",
    ),
}


@pytest.mark.parametrize(("request_", "status", "code"), UPLOADS.values(), ids=UPLOADS.keys())
def test_a_bad_upload_is_a_clear_4xx_and_stores_nothing(outsider, widget, request_, status, code):
    token, _ = issue_token(widget)
    before = stored()
    request_ = dict(request_)
    data, content_type = request_.pop("data"), request_.pop("content_type")
    with captured_logs(logging.INFO) as lines:
        response = outsider.generic(
            "POST",
            f"/widget/v1/{widget.public_key}/attachments",
            data,
            content_type=content_type,
            headers={"origin": ACME_ORIGIN, "authorization": f"Bearer {token}"},
            **request_,
        )
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["message"] and (code is None or error["code"] == code)
    assert stored() == before
    no_trouble(lines)


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer x.y.z", "Basic abc", "Bearer \x01\x02", "Bearer " + "a" * 100_000],
    ids=["none", "empty", "garbage", "another scheme", "control characters", "huge"],
)
def test_an_upload_without_a_good_token_is_401_and_stores_nothing(outsider, widget, authorization):
    before = stored()
    headers = {"origin": ACME_ORIGIN, **({"authorization": authorization} if authorization else {})}
    with captured_logs(logging.INFO) as lines:
        response = outsider.post(
            f"/widget/v1/{widget.public_key}/attachments",
            {"file": SimpleUploadedFile("a.png", png())},
            headers=headers,
        )
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_invalid"
    assert stored() == before
    no_trouble(lines)


# --- File links ----------------------------------------------------------------------------------


def test_garbage_file_links_are_404(outsider, widget):
    @HYPOTHESIS
    @given(token=st.text(st.characters(exclude_characters="/?#"), min_size=1, max_size=300), name=st.text(max_size=50))
    def run(token, name):
        response = outsider.get(f"/files/{token}/{name or 'x'}")
        assert response.status_code in (404, 410)

    with captured_logs(logging.INFO) as lines:
        run()
    no_trouble(lines)


def test_a_link_for_another_visitor_or_another_file_is_404(outsider, widget):
    token, _ = issue_token(widget)
    response = outsider.post(
        f"/widget/v1/{widget.public_key}/attachments",
        {"file": SimpleUploadedFile("a.png", png())},
        headers={"origin": ACME_ORIGIN, "authorization": f"Bearer {token}"},
    )
    upload = Attachment.objects.get(pk=response.json()["id"])
    owner = upload.uploaded_by_contact_id
    other = Contact.objects.exclude(pk=owner).first()
    for claim in ({"a": upload.pk, "v": other.pk}, {"a": upload.pk + 1000, "v": owner}, {"a": HUGE, "v": HUGE}):
        forged_by_us = signing.dumps(claim, salt=attachments.LINK_SALT, compress=False)
        assert outsider.get(f"/files/{forged_by_us}/a.png").status_code == 404
