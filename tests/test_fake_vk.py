"""Self-tests of the fake VK server (tests/fakes/vk.py), driven only through the real vk-api library.

Where vk-api hides the wire (the long poll's ``failed`` answers) the raw answer is read with requests too.
"""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import vk_api
from vk_api import VkUpload
from vk_api.bot_longpoll import VkBotEventType, VkBotLongPoll
from vk_api.exceptions import ApiError, ApiHttpError

from tests.fakes.vk import FakeVK, tiny_png
from tests.fakes.vk import vk_fake as vk_fake  # the fixture, for the tests here

GROUP, TOKEN, USER = 218000001, "vk1.a.community-token", 7001


@pytest.fixture
def fake(vk_fake: FakeVK) -> FakeVK:
    vk_fake.add_group(GROUP, TOKEN, name="Acme support")
    vk_fake.add_user(USER, "Иван", "Петров")
    return vk_fake


@pytest.fixture
def vk(fake: FakeVK) -> vk_api.VkApi:
    return fake.vk_session(TOKEN)


def test_groups_get_by_id_with_a_good_and_a_bad_token(fake, vk):
    answer = vk.get_api().groups.getById()
    assert answer["groups"][0]["id"] == GROUP
    assert answer["groups"][0]["name"] == "Acme support"
    assert fake.calls_of("groups.getById")[0].params["v"] == "5.199"

    with pytest.raises(ApiError) as caught:
        fake.vk_session("not-a-token").get_api().groups.getById()
    assert caught.value.code == 5
    assert "invalid access_token" in caught.value.error["error_msg"]
    assert {"key": "method", "value": "groups.getById"} in caught.value.error["request_params"]

    fake.revoke(TOKEN)
    with pytest.raises(ApiError) as caught:
        vk.get_api().groups.getById()
    assert caught.value.code == 5


def test_the_library_url_is_redirected_and_only_that(fake):
    # A plain VkApi (no session) would go to https://api.vk.ru; ours never leaves 127.0.0.1.
    session = fake.vk_session(TOKEN).http
    assert session.api_url == fake.api_url + "/"
    response = session.post(
        "https://api.vk.ru/method/users.get", {"user_ids": USER, "v": "5.199", "access_token": TOKEN}
    )
    assert response.json()["response"][0]["first_name"] == "Иван"


def test_users_get_gives_names(vk):
    users = vk.get_api().users.get(user_ids=[USER, 999])
    assert (users[0]["id"], users[0]["first_name"], users[0]["last_name"]) == (USER, "Иван", "Петров")
    assert users[1]["deactivated"] == "deleted"


def test_messages_send_is_recorded_and_a_repeated_random_id_posts_once(fake, vk):
    api = vk.get_api()
    first = api.messages.send(peer_id=USER, message="Hello", random_id=42)
    again = api.messages.send(peer_id=USER, message="Hello", random_id=42)
    other = api.messages.send(user_id=USER, message="Second", random_id=43)
    assert first == again != other
    assert [(m.peer_id, m.text, m.random_id, m.message_id) for m in fake.sent] == [
        (USER, "Hello", 42, first),
        (USER, "Second", 43, other),
    ]
    # The same random_id to another dialogue is a new message.
    api.messages.send(peer_id=USER + 1, message="Hi", random_id=42)
    assert len(fake.sent) == 3

    with pytest.raises(ApiError) as caught:
        api.messages.send(peer_id=USER, message="no random_id")
    assert caught.value.code == 100


def test_unknown_methods_and_users_who_did_not_allow_messages(fake, vk):
    with pytest.raises(ApiError) as caught:
        vk.get_api().messages.noSuchMethod()
    assert caught.value.code == 3

    fake.push_event(GROUP, fake.message_deny(GROUP, USER))
    with pytest.raises(ApiError) as caught:
        vk.get_api().messages.send(peer_id=USER, message="x", random_id=1)
    assert caught.value.code == 901
    assert caught.value.error["error_msg"] == "Can't send messages for users without permission"
    fake.push_event(GROUP, fake.message_allow(GROUP, USER))
    assert vk.get_api().messages.send(peer_id=USER, message="x", random_id=1)


def test_rate_limit_error_6(fake, vk):
    # vk-api's own handler sleeps 0.5 s and repeats the call on error 6 ...
    fake.fail_next("messages.send", error_code=6)
    vk.get_api().messages.send(peer_id=USER, message="after a pause", random_id=7)
    assert [c.error_code for c in fake.calls_of("messages.send")] == [6, None]
    assert len(fake.sent) == 1

    # ... so an adapter that honours the rate limit itself removes that handler and sees ApiError 6.
    vk.error_handlers.pop(6)
    fake.fail_next("messages.send", error_code=6)
    with pytest.raises(ApiError) as caught:
        vk.get_api().messages.send(peer_id=USER, message="x", random_id=8)
    assert (caught.value.code, caught.value.error["error_msg"]) == (6, "Too many requests per second")

    for code, text in ((9, "Flood control"), (10, "Internal server error")):
        fake.fail_next("messages.send", error_code=code)
        with pytest.raises(ApiError) as caught:
            vk.get_api().messages.send(peer_id=USER, message="x", random_id=8)
        assert (caught.value.code, caught.value.error["error_msg"]) == (code, text)
    assert len(fake.sent) == 1


def test_http_errors_and_dropped_connections(fake, vk):
    fake.fail_next("users.get", error_code=None, http_status=503)
    with pytest.raises(ApiHttpError) as caught:
        vk.get_api().users.get(user_ids=USER)
    assert caught.value.response.status_code == 503

    fake.fail_next("users.get", error_code=None, drop=True)
    with pytest.raises(requests.ConnectionError):
        vk.get_api().users.get(user_ids=USER)

    assert vk.get_api().users.get(user_ids=USER)[0]["id"] == USER


def test_long_poll_delivers_message_new_with_attachments(fake, vk):
    longpoll = VkBotLongPoll(vk, GROUP, wait=1)
    photo = tiny_png()
    first = fake.push_event(
        GROUP, fake.message_new(GROUP, USER, "Где заказ?", photos=[photo], docs=[("a.pdf", b"%PDF")])
    )
    second = fake.push_event(GROUP, fake.message_new(GROUP, USER, "Ау"))

    events = longpoll.check()
    assert [e.raw["event_id"] for e in events] == [first["event_id"], second["event_id"]]
    event = events[0]
    assert event.type is VkBotEventType.MESSAGE_NEW and event.from_user and event.group_id == GROUP
    assert event.message.text == "Где заказ?" and event.message.from_id == USER
    assert event.client_info["keyboard"] is True
    photo_att, doc_att = event.message.attachments
    biggest = max(photo_att["photo"]["sizes"], key=lambda s: s["width"] * s["height"])
    assert requests.get(biggest["url"], timeout=5).content == photo
    assert requests.get(doc_att["doc"]["url"], timeout=5).content == b"%PDF"
    assert (doc_att["doc"]["title"], doc_att["doc"]["ext"]) == ("a.pdf", "pdf")
    assert longpoll.ts == str(fake.longpoll_ts(GROUP))

    # Nothing new: the answer comes after ``wait`` with no updates.
    started = time.monotonic()
    assert longpoll.check() == []
    assert 0.9 < time.monotonic() - started < 3

    # An event pushed while a long poll waits ends the wait at once.
    longpoll.wait = 10
    timer = threading.Timer(0.2, lambda: fake.push_event(GROUP, fake.message_event(GROUP, USER, {"cmd": "ok"})))
    timer.start()
    started = time.monotonic()
    events = longpoll.check()
    timer.join()
    assert time.monotonic() - started < 3
    assert events[0].type is VkBotEventType.MESSAGE_EVENT and events[0].object.payload == {"cmd": "ok"}


def test_long_poll_failed_1_continues_from_the_new_ts(fake, vk):
    # vk-api's handling: it takes the ts from the answer and returns no events.
    longpoll = VkBotLongPoll(vk, GROUP, wait=1)
    fake.push_event(GROUP, fake.message_new(GROUP, USER, "lost"))
    fake.fail_longpoll(1)
    key = longpoll.key
    assert longpoll.check() == []
    assert (longpoll.ts, longpoll.key) == (str(fake.longpoll_ts(GROUP)), key)
    fake.push_event(GROUP, fake.message_new(GROUP, USER, "after"))
    assert [e.message.text for e in longpoll.check()] == ["after"]

    # The raw answer, which vk-api hides.
    fake.fail_longpoll(1, ts=123)
    raw = requests.get(longpoll.server, params={"act": "a_check", "key": key, "ts": longpoll.ts, "wait": 1}, timeout=5)
    assert raw.json() == {"failed": 1, "ts": "123"}


def test_long_poll_failed_2_needs_a_new_key_and_keeps_the_ts(fake, vk):
    longpoll = VkBotLongPoll(vk, GROUP, wait=1)
    old_key, ts = longpoll.key, longpoll.ts
    fake.fail_longpoll(2)
    assert longpoll.check() == []  # vk-api called groups.getLongPollServer again, keeping its ts
    assert longpoll.key != old_key and longpoll.ts == ts
    assert len(fake.calls_of("groups.getLongPollServer")) == 2

    # The old key keeps failing with 2 (raw, as vk-api already moved on).
    raw = requests.get(longpoll.server, params={"act": "a_check", "key": old_key, "ts": ts, "wait": 1}, timeout=5)
    assert raw.json() == {"failed": 2}

    fake.push_event(GROUP, fake.message_new(GROUP, USER, "with the new key"))
    assert [e.message.text for e in longpoll.check()] == ["with the new key"]


def test_long_poll_failed_3_needs_a_new_key_and_ts(fake, vk):
    longpoll = VkBotLongPoll(vk, GROUP, wait=1)
    old_key = longpoll.key
    fake.push_event(GROUP, fake.message_new(GROUP, USER, "before"))
    fake.fail_longpoll(3)
    assert longpoll.check() == []
    assert longpoll.key != old_key and longpoll.ts == str(fake.longpoll_ts(GROUP))
    raw = requests.get(
        longpoll.server, params={"act": "a_check", "key": old_key, "ts": longpoll.ts, "wait": 0}, timeout=5
    )
    assert raw.json() == {"failed": 2}


def test_photo_and_document_uploads_through_vkupload(fake, vk):
    upload = VkUpload(vk)
    image = tiny_png(4, 4)
    photo = upload.photo_messages(io.BytesIO(image), peer_id=USER)[0]
    doc = upload.document_message(io.BytesIO(b"report"), title="report.txt", peer_id=USER)["doc"]
    attachment = f"photo{photo['owner_id']}_{photo['id']}_{photo['access_key']},doc{doc['owner_id']}_{doc['id']}"

    vk.get_api().messages.send(peer_id=USER, message="Files", attachment=attachment, random_id=11)
    sent = fake.sent[0]
    assert sent.attachment == attachment
    assert [m.data for m in sent.media] == [image, b"report"]
    assert doc["title"] == "report.txt"
    assert requests.get(photo["sizes"][-1]["url"], timeout=5).content == image


class Receiver:
    """A tiny Callback API server: answers the confirmation with ``code`` and events with ``answers``."""

    def __init__(self, code: str, answers: list[tuple[int, str]] | None = None):
        self.code, self.answers, self.requests = code, list(answers or []), []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append((body, dict(self.headers)))
                if body["type"] == "confirmation":
                    status, text = 200, receiver.code
                else:
                    status, text = receiver.answers.pop(0) if receiver.answers else (200, "ok")
                self.send_response(status)
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/vk/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver("c0nf1rm")
    yield server
    server.close()


def test_callback_confirmation_and_delivery_with_the_secret(fake, receiver):
    assert fake.set_callback(GROUP, receiver.url, "s3cret", "c0nf1rm")
    assert receiver.requests[0][0] == {"type": "confirmation", "group_id": GROUP, "secret": "s3cret"}

    event = fake.push_event(GROUP, fake.message_new(GROUP, USER, "via callback"))
    fake.wait_for_deliveries(5)
    body, headers = receiver.requests[1]
    assert body["secret"] == "s3cret" and body["event_id"] == event["event_id"] and body["type"] == "message_new"
    assert body["object"]["message"]["text"] == "via callback" and body["group_id"] == GROUP
    assert "X-Retry-Counter" not in headers

    wrong = Receiver("something else")
    try:
        assert not fake.set_callback(GROUP, wrong.url, "s3cret", "c0nf1rm")
        fake.push_event(GROUP, fake.message_new(GROUP, USER, "not delivered"))
        time.sleep(0.2)
        assert [b["type"] for b, _ in wrong.requests] == ["confirmation"]
    finally:
        wrong.close()


def test_callback_retries_an_event_not_answered_ok(fake, receiver):
    receiver.answers = [(500, "error"), (200, "not ok")]
    assert fake.set_callback(GROUP, receiver.url, "s3cret", "c0nf1rm")
    first = fake.push_event(GROUP, fake.message_new(GROUP, USER, "one"))
    second = fake.push_event(GROUP, fake.message_new(GROUP, USER, "two"))
    fake.wait_for_deliveries(5)

    events = [(b["event_id"], h.get("X-Retry-Counter")) for b, h in receiver.requests[1:]]
    assert events == [
        (first["event_id"], None),
        (first["event_id"], "1"),
        (first["event_id"], "2"),
        (second["event_id"], None),
    ]
    assert [d.status for d in fake.deliveries if d.type == "message_new"] == [500, 200, 200, 200]


def test_callback_retries_are_bounded():
    with FakeVK(callback_attempts=3, callback_retry_delay=0.01) as fake:
        fake.add_group(GROUP, TOKEN)
        receiver = Receiver("c", answers=[(500, "down")] * 10)
        try:
            assert fake.set_callback(GROUP, receiver.url, None, "c")
            fake.push_event(GROUP, fake.message_new(GROUP, USER, "x"))
            fake.wait_for_deliveries(5)
            assert len(receiver.requests) == 1 + 3
            assert "secret" not in receiver.requests[1][0]
        finally:
            receiver.close()
