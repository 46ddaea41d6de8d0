"""The widget socket's protocol under random frames (hypothesis).

Every frame generated here is a bad one, by construction: JSON that is not an object,
objects with the known keys holding the wrong types, unknown types, text that is not JSON
(with NUL bytes and lone surrogates), binary frames, huge strings and numbers, deep
nesting. The invariants: the socket is never dropped, each bad frame is answered by one
error frame and nothing else, nothing is stored, and a good message afterwards is stored
exactly once. Most examples go through Channels' communicator on the real ASGI app (fast);
a few go over the wire to a real uvicorn server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any

import pytest
import websockets
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpdesk import safejson
from helpdesk.conversations.models import Message, Rating
from integrations.widget.visitors import issue_token
from smartchat.asgi import application
from tests.conftest import ACME_ORIGIN
from tests.live import captured_logs
from tests.test_live_server import TIMEOUT

pytestmark = pytest.mark.django_db(transaction=True)

KNOWN_TYPES = ("message", "resume", "typing", "ping", "rate")
UNSTORABLE = ["\x00", "\ud800", "\udfff"]
GOOD_CLIENT_ID = st.text("abcdef0123456789", min_size=8, max_size=64)

# --- Strategies: each draws one bad frame, as ("json", value) | ("text", str) | ("bytes", bytes) ---

characters = st.one_of(st.characters(exclude_categories=()), st.sampled_from([*UNSTORABLE, " ", "{", '"', "["]))
text = st.text(characters, max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children, max_size=3),
    max_leaves=8,
)
extra_keys = st.dictionaries(
    text.filter(
        lambda key: (
            key not in ("type", "body", "client_id", "after", "typing", "attachments", "rating", "comment")
            and key != "resolution"
        )
    ),
    json_values,
    max_size=2,
)


def with_extras(frame: dict[str, Any]) -> st.SearchStrategy:
    return extra_keys.map(lambda extras: ("json", {**extras, **frame}))


def unstorable_text(draw_text: st.SearchStrategy = text) -> st.SearchStrategy:
    return st.tuples(draw_text, st.sampled_from(UNSTORABLE), draw_text).map("".join)


not_text = json_values.filter(lambda value: not isinstance(value, str))
bad_client_id = not_text | st.text(max_size=7) | st.text(min_size=65, max_size=80)
# Ids of uploads nobody made (the database's ids start at 1; none this large exist), or not ids.
bad_attachments = st.one_of(
    st.lists(st.integers(2**40, 2**63 - 1), min_size=1, max_size=3),
    json_values.filter(lambda value: not isinstance(value, list)),
    st.lists(json_values.filter(lambda value: not isinstance(value, int) or isinstance(value, bool)), min_size=1),
    st.lists(st.integers(max_value=-1) | st.integers(min_value=2**63), min_size=1, max_size=2),
)
bad_messages = st.one_of(
    st.builds(
        lambda ids, cid: {"type": "message", "body": "with files", "client_id": cid, "attachments": ids},
        bad_attachments,
        GOOD_CLIENT_ID,
    ),
    st.builds(lambda body, cid: {"type": "message", "body": body, "client_id": cid}, not_text, json_values),
    st.builds(lambda body, cid: {"type": "message", "body": body, "client_id": cid}, text, bad_client_id),
    st.builds(lambda body, cid: {"type": "message", "body": body, "client_id": cid}, unstorable_text(), GOOD_CLIENT_ID),
    st.builds(
        lambda cid: {"type": "message", "body": "hello", "client_id": cid},
        unstorable_text(st.text("abc", min_size=4, max_size=8)),
    ),
    st.builds(
        lambda body, cid: {"type": "message", "body": body, "client_id": cid},
        st.text(" \t\n", max_size=5),  # blank
        GOOD_CLIENT_ID,
    ),
    st.builds(
        lambda n, cid: {"type": "message", "body": "x" * n, "client_id": cid},
        st.integers(django_settings.MESSAGE_MAX_CHARS + 1, 20_000),
        GOOD_CLIENT_ID,
    ),
).flatmap(with_extras)
bad_after = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    text,
    st.lists(st.integers(), max_size=2),
    st.integers(max_value=-1),
    st.integers(min_value=2**63),
)
bad_resumes = bad_after.flatmap(lambda after: with_extras({"type": "resume", "after": after}))
bad_typing = json_values.filter(lambda value: not isinstance(value, bool)).flatmap(
    lambda typing: with_extras({"type": "typing", "typing": typing})
)
unknown_types = json_values.filter(lambda kind: kind not in KNOWN_TYPES).flatmap(
    lambda kind: with_extras({"type": kind})
)
# Ratings: a score that is not a whole number from 1 to 5, a comment that is not storable text
# or too long, a resolution that is not an id; and good-looking ones from a visitor with nothing
# to rate (the fuzzed visitor's conversation was never resolved). Each is one error, no Rating.
bad_scores = json_values.filter(lambda v: isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 5)
bad_rates = st.one_of(
    st.builds(lambda score: {"type": "rate", "rating": score}, bad_scores),
    st.builds(
        lambda score, comment: {"type": "rate", "rating": score, "comment": comment},
        st.integers(1, 5),
        not_text.filter(lambda v: v is not None),
    ),
    st.builds(
        lambda score, comment: {"type": "rate", "rating": score, "comment": comment},
        st.integers(1, 5),
        unstorable_text() | st.integers(1001, 3000).map(lambda n: "y" * n),
    ),
    st.builds(
        lambda score, resolution: {"type": "rate", "rating": score, "resolution": resolution},
        st.integers(1, 5),
        bad_after.filter(lambda v: v is not None),
    ),
    st.builds(lambda score, comment: {"type": "rate", "rating": score, "comment": comment}, st.integers(1, 5), text),
).flatmap(with_extras)
not_objects = json_values.filter(lambda value: not isinstance(value, dict)).map(lambda value: ("json", value))


def is_bad_text(frame: str) -> bool:
    """Text the server must refuse: not JSON, not an object, or an object of no known type."""
    try:
        value = safejson.loads(frame)
    except safejson.BadJSON:
        return True
    return not isinstance(value, dict) or value.get("type") not in KNOWN_TYPES


raw_texts = text.filter(is_bad_text).map(lambda frame: ("text", frame))
deep = st.integers(safejson.MAX_DEPTH + 1, 3000).map(lambda n: ("text", "[" * n + "]" * n))
long_numbers = st.integers(4301, 6000).map(lambda n: ("text", '{"type": "resume", "after": ' + "9" * n + "}"))
binary = st.binary(max_size=64).map(lambda data: ("bytes", data))

bad_frames = st.one_of(
    bad_messages, bad_resumes, bad_typing, bad_rates, unknown_types, not_objects, raw_texts, deep, long_numbers, binary
)


def wire(frame: tuple[str, Any]) -> str | bytes:
    kind, value = frame
    return json.dumps(value) if kind == "json" else value  # json.dumps escapes surrogates (\ud800)


def sendable(frame: tuple[str, Any]) -> bool:
    """A real socket carries UTF-8 text only: raw lone surrogates can't even be sent."""
    data = wire(frame)
    if isinstance(data, bytes):
        return True
    try:
        data.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_error(reply: dict[str, Any]) -> None:
    assert reply["type"] == "error", reply
    assert isinstance(reply["code"], str) and reply["code"]
    assert isinstance(reply["message"], str) and reply["message"]


def stored_for(channel, visitor_id: str) -> list[str]:
    return list(
        Message.objects.filter(channel=channel, conversation__contact__identities__external_id=visitor_id).values_list(
            "body", flat=True
        )
    )


# --- Through the communicator, on the real ASGI application -----------------------------------


async def communicator_scenario(channel, visitor_id: str, frames: list[tuple[str, Any]]) -> None:
    token, _ = issue_token(channel, visitor_id)
    ws = WebsocketCommunicator(
        application, f"/ws/widget/{channel.public_key}/", headers=[(b"origin", ACME_ORIGIN.encode())]
    )
    assert (await ws.connect())[0]
    try:
        await ws.send_json_to({"type": "auth", "token": token})
        assert (await ws.receive_json_from())["type"] == "hello"
        for frame in frames:
            data = wire(frame)
            # send_input, not send_to: the communicator refuses to send an empty frame.
            await ws.send_input({"type": "websocket.receive", "bytes" if isinstance(data, bytes) else "text": data})
            # A dropped socket raises here (the app's exception) or answers websocket.close.
            check_error(await ws.receive_json_from(timeout=TIMEOUT))
        await ws.send_json_to({"type": "message", "body": "the good one", "client_id": "good-" + visitor_id[:20]})
        seen = {(await ws.receive_json_from(timeout=TIMEOUT))["type"] for _ in range(2)}
        assert seen == {"ack", "message"}  # one ack, one echo: no error left over from before
        assert await ws.receive_nothing(timeout=0.05)
    finally:
        await ws.disconnect()
        channel_layers.backends.pop("default", None)  # each example runs on a loop of its own


def test_random_bad_frames_never_drop_the_widget_socket(tcast):
    @settings(
        max_examples=60,
        deadline=5000,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(frames=st.lists(bad_frames, min_size=1, max_size=4))
    def run(frames):
        visitor_id = uuid.uuid4().hex
        async_to_sync(communicator_scenario)(tcast.widget, visitor_id, frames)
        assert stored_for(tcast.widget, visitor_id) == ["the good one"]
        assert not Rating.objects.exists()

    with captured_logs(logging.WARNING) as lines:
        run()
    assert lines == []  # no traceback, no warning, for any of them


# --- Over the wire, to a real uvicorn server ----------------------------------------------------


async def wire_scenario(server, channel, visitor_id: str, frames: list[tuple[str, Any]]) -> None:
    token, _ = issue_token(channel, visitor_id)
    async with websockets.connect(f"{server.ws_url}/ws/widget/{channel.public_key}/", origin=ACME_ORIGIN) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] == "hello"
        for frame in frames:
            await ws.send(wire(frame))
            check_error(json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT)))
        await ws.send(json.dumps({"type": "message", "body": "the good one", "client_id": "good-" + visitor_id[:20]}))
        seen = {json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))["type"] for _ in range(2)}
        assert seen == {"ack", "message"}


def test_random_bad_frames_never_drop_the_widget_socket_on_a_real_server(asgi_server, tcast):
    @settings(max_examples=8, deadline=10_000, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(frames=st.lists(bad_frames.filter(sendable), min_size=1, max_size=4))
    def run(frames):
        visitor_id = uuid.uuid4().hex
        asyncio.run(wire_scenario(asgi_server, tcast.widget, visitor_id, frames))
        assert stored_for(tcast.widget, visitor_id) == ["the good one"]
        assert not Rating.objects.exists()

    with captured_logs(logging.WARNING) as lines:
        run()
    assert lines == []
