"""Bad frames on real sockets (uvicorn + websockets): an error frame, the socket stays open.

Each of these once dropped the connection without a close frame and wrote a long
traceback, so any visitor could flood the logs. Now each gets one `error` frame, at most
one log line, nothing stored, and the next good frame goes through.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async

from helpdesk.conversations.models import Message
from helpdesk.events.models import Event
from tests.live import Session, captured_logs
from tests.test_live_server import TIMEOUT, next_of, open_inbox, open_visitor, start_widget_session

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_ID = "c" * 32


def message(body: str = "hello", client_id: str = CLIENT_ID) -> str:
    return json.dumps({"type": "message", "body": body, "client_id": client_id})


# Frames as sent on the wire: text (str) or binary (bytes).
VISITOR_FAULTS = {
    "a NUL byte in a message": (message("a\x00b"), "bad_characters"),
    # json.dumps writes a lone surrogate as the JSON escape \ud800, as a script would send it.
    "a lone surrogate in a message": (message("a\ud800b"), "bad_characters"),
    "a NUL byte in a client_id": (message(client_id="abcdefgh\x00"), "bad_characters"),
    "a lone surrogate in a client_id": (message(client_id="abcdefgh\udfff"), "bad_characters"),
    "a text frame that is not JSON": ("hello there", "bad_json"),
    "an empty text frame": ("", "bad_json"),
    "a binary frame": (b"\x00\x01binary", "binary_frame"),
    "JSON nested past what the parser survives": ("[" * 5000 + "]" * 5000, "bad_json"),
    "JSON nested deeper than any frame": (
        json.dumps(
            {
                "type": "message",
                "body": "x",
                "client_id": CLIENT_ID,
                "extra": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]],
            }
        ),
        "bad_json",
    ),
    "a number with more digits than Python parses": ('{"type": "resume", "after": ' + "9" * 5000 + "}", "bad_json"),
    "a huge resume point": (json.dumps({"type": "resume", "after": 10**30}), "bad_resume"),
    "a resume point that is a float": (json.dumps({"type": "resume", "after": 1.5}), "bad_resume"),
    "a resume point that is a boolean": (json.dumps({"type": "resume", "after": True}), "bad_resume"),
    "typing that is not a boolean": (json.dumps({"type": "typing", "typing": "yes"}), "bad_typing"),
    "a body that is not text": (
        json.dumps({"type": "message", "body": {"a": 1}, "client_id": CLIENT_ID}),
        "bad_message",
    ),
    "a type that is not text": (json.dumps({"type": ["message"]}), "unknown_type"),
}


@pytest.mark.parametrize(("frame", "code"), VISITOR_FAULTS.values(), ids=VISITOR_FAULTS.keys())
def test_a_bad_visitor_frame_gets_an_error_and_the_socket_stays_open(asgi_server, tcast, frame, code):
    token = start_widget_session(asgi_server, tcast.widget)

    async def scenario():
        async with await open_visitor(asgi_server, tcast.widget, token) as ws:
            with captured_logs() as lines:
                await ws.send(frame)
                error = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
                await ws.send(message("still here", "after-the-fault"))
                ack = await next_of(ws, "ack")
            return error, ack, lines

    error, ack, lines = asyncio.run(scenario())
    assert (error["type"], error["code"]) == ("error", code)
    assert error["message"]
    assert ack["client_id"] == "after-the-fault"
    assert len(lines) <= 1, "\n".join(lines)
    stored = Message.objects.filter(channel=tcast.widget).exclude(pk=tcast.first_message.pk)
    assert [m.body for m in stored] == ["still here"]


INBOX_FAULTS = {
    "a text frame that is not JSON": ("{oops", "bad_json"),
    "a binary frame": (b"\xff\xfe", "binary_frame"),
    "JSON nested past what the parser survives": ("[" * 5000 + "]" * 5000, "bad_json"),
    "a lone surrogate in a frame": ('{"type": "\\ud800"}', "unknown_type"),
    "a huge resume point": (json.dumps({"type": "resume", "after": 10**30}), "bad_resume"),
    "a resume point that is a boolean": (json.dumps({"type": "resume", "after": True}), "bad_resume"),
    "a ping's resume point that is a boolean": (json.dumps({"type": "ping", "after": True}), "bad_resume"),
    "a ping's resume point that is huge": (json.dumps({"type": "ping", "after": 10**30}), "bad_resume"),
    "typing in a huge conversation id": (
        json.dumps({"type": "typing", "conversation_id": 10**30, "mode": "reply", "typing": True}),
        "bad_typing",
    ),
    "typing in a float conversation id": (
        json.dumps({"type": "typing", "conversation_id": 1.5, "mode": "reply", "typing": True}),
        "bad_typing",
    ),
    "typing in an unhashable mode": (
        json.dumps({"type": "typing", "conversation_id": 1, "mode": ["reply"], "typing": True}),
        "bad_typing",
    ),
}


@pytest.mark.parametrize(("frame", "code"), INBOX_FAULTS.values(), ids=INBOX_FAULTS.keys())
def test_a_bad_inbox_frame_gets_an_error_and_the_socket_stays_open(asgi_server, tcast, frame, code):
    session = Session.of(asgi_server, tcast.alice)
    counts = []

    async def scenario():
        async with await open_inbox(asgi_server, session) as ws:
            counts.append(await sync_to_async(Event.objects.count)())
            with captured_logs() as lines:
                await ws.send(frame)
                error = await next_of(ws, "error")
                await ws.send(json.dumps({"type": "ping"}))
                pong = await next_of(ws, "pong")
            counts.append(await sync_to_async(Event.objects.count)())
            return error, pong, lines

    error, pong, lines = asyncio.run(scenario())
    assert error["code"] == code and error["message"]
    assert pong["type"] == "pong"
    assert len(lines) <= 1, "\n".join(lines)
    assert counts[0] == counts[1]  # nothing written
