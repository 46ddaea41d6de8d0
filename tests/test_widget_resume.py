"""The widget's resume over real sockets (uvicorn, websockets): paged, oldest first, nothing lost.

A visitor away for longer than a page gets every message written meanwhile, in order, each
once, by asking again from the last id of each page until `more` is false; a message pushed
live between two pages changes nothing. A bad resume point is a clear error, the socket open.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from helpdesk.conversations import actions
from helpdesk.conversations.models import Message, MessageKind
from integrations.widget import visitors
from integrations.widget.visitors import issue_token
from tests.conftest import ACME_ORIGIN

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
TIMEOUT = 5
PAGE = 5


async def next_of(ws, kind: str, skipped: list | None = None) -> dict:
    """The next frame of a type; the others (pushes, pongs) go to ``skipped``."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if frame["type"] == kind:
            return frame
        if skipped is not None:
            skipped.append(frame)


async def open_visitor(server, channel, visitor_id: str = "visitor-1"):
    token, _ = await sync_to_async(issue_token)(channel, visitor_id)
    ws = await websockets.connect(f"{server.ws_url}/ws/widget/{channel.public_key}/", origin=ACME_ORIGIN)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    await next_of(ws, "hello")
    return ws


def visible_ids(conversation) -> list[int]:
    return list(
        Message.objects.filter(conversation=conversation, kind=MessageKind.MESSAGE, deleted_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def write_while_away(cast, count: int) -> None:
    for n in range(count):
        if n % 3 == 2:
            actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body=f"visitor {n}")
        else:
            actions.post_reply(cast.conversation, by=cast.alice, body=f"agent {n}")
        if n % 4 == 0:
            actions.add_note(cast.conversation, by=cast.alice, body=f"note {n}")


async def test_a_visitor_away_longer_than_a_page_gets_every_message_in_order_once(tcast, asgi_server, monkeypatch):
    monkeypatch.setattr(visitors, "RESUME_PAGE", PAGE)
    seen = tcast.first_message.pk
    await database_sync_to_async(write_while_away)(tcast, 3 * PAGE - 2)
    async with await open_visitor(asgi_server, tcast.widget) as ws:
        got, flags, live = [], [], []
        after = seen
        while True:
            await ws.send(json.dumps({"type": "resume", "after": after}))
            page = await next_of(ws, "history", live)
            assert len(page["messages"]) <= PAGE
            got += [m["id"] for m in page["messages"]]
            flags.append(page["more"])
            if not flags[-1]:
                break
            after = page["messages"][-1]["id"]  # the page's last id, as the widget asks
            if len(flags) == 1:
                # Written between two pages: pushed live, and in a later page all the same.
                await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.bob, body="meanwhile")
        expected = [pk for pk in await database_sync_to_async(visible_ids)(tcast.conversation) if pk > seen]
        assert got == expected  # every one, in id order, none twice, no note
        assert len(expected) == 3 * PAGE - 1
        assert flags == [True, True, False]
        pushed = [f for f in live if f["type"] == "message"] or [await next_of(ws, "message")]
        assert [f["message"]["body"] for f in pushed] == ["meanwhile"]


async def test_a_resume_with_nothing_new_is_one_empty_last_page(tcast, asgi_server):
    async with await open_visitor(asgi_server, tcast.widget) as ws:
        await ws.send(json.dumps({"type": "resume", "after": tcast.first_message.pk}))
        assert await next_of(ws, "history") == {"type": "history", "messages": [], "more": False}
        # A stranger's resume point past every id: nothing, and nothing of anyone else.
        async with await open_visitor(asgi_server, tcast.widget, "someone-else") as other:
            await other.send(json.dumps({"type": "resume", "after": 0}))
            assert await next_of(other, "history") == {"type": "history", "messages": [], "more": False}


@pytest.mark.parametrize("after", ["yesterday", "1", -1, True, None, 1.5, 2**63, [1], {"id": 1}])
async def test_a_bad_resume_point_is_a_clear_error_and_the_socket_stays(tcast, asgi_server, after):
    async with await open_visitor(asgi_server, tcast.widget) as ws:
        await ws.send(json.dumps({"type": "resume", "after": after}))
        error = await next_of(ws, "error")
        assert error["code"] == "bad_resume" and error["message"]
        await ws.send(json.dumps({"type": "ping"}))
        assert (await next_of(ws, "pong"))["type"] == "pong"
        await ws.send(json.dumps({"type": "resume", "after": 0}))
        page = await next_of(ws, "history")
        assert [m["id"] for m in page["messages"]] == [tcast.first_message.pk] and page["more"] is False
