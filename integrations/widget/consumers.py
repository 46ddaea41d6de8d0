"""The visitor's socket: messages in, agents' replies and team presence out.

The visitor's token never travels in the URL (URLs end up in access logs, and the token
lets anyone read and write as that visitor). The socket opens on ``/ws/widget/<key>/``
(the page's Origin is checked then) and its first frame says who it is::

    {"type": "auth", "token": "<token>"}  ->  {"type": "hello", "online": ...}

A bad or expired token gets an error frame and the close code ``4000 + status`` (4401:
start a new session; 4403/4404: give up). Any other first frame, a token in the URL, or no
auth within ``AUTH_SECONDS`` gets an error frame and a close too.

A message frame may carry files uploaded before (``POST /widget/v1/<key>/attachments``)::

    {"type": "message", "body": "", "client_id": "...", "attachments": [12, 13]}

The text may be empty when there are files. An id that is not the visitor's own unsent
upload refuses the whole message (``bad_attachment``), as more files than a message may
carry does (``too_many_files``): an error frame, and nothing is stored.

The satisfaction survey (docs/csat.md): pushed as ``{"type": "survey", "survey": {...}|null}``
when the conversation is resolved (null: it was reopened), answered with::

    {"type": "rate", "rating": 1..5, "comment": "...", "resolution": n}  ->  {"type": "rated", ...}

or an ``error`` (``bad_rating``, ``bad_comment``, ``comment_too_long``, ``already_rated``,
``rating_closed``, ``not_resolved``, ``not_rateable``): nothing changes then.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs

from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext as _

from helpdesk import ratelimits
from helpdesk.accounts.presence import team_online
from helpdesk.conversations import actions
from helpdesk.conversations.inbound import SenderHint
from helpdesk.conversations.models import Channel
from helpdesk.events.audit import socket_client_ip
from helpdesk.realtime import notices
from helpdesk.realtime.sockets import LiveJsonConsumer, TypingThrottle, is_id, socket_db

from . import inbound
from .visitors import WidgetError, check_origin, read_token, visitor_group, visitor_messages_after, widget_channel

log = logging.getLogger(__name__)

# Seconds an opened socket has to send its auth frame (the widget sends it at once).
AUTH_SECONDS = 10
BAD_REQUEST = 4400  # the socket broke the protocol (no auth first, a token in the URL)
AUTH_TIMEOUT = 4408
# More ids than any message may carry can only be a probe: refused before the database.
MAX_ATTACHMENT_IDS = 100
# Seconds the widget waits before sending again a message the database could not take.
UNAVAILABLE_RETRY_AFTER = 2


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


@socket_db
def _admit(public_key: str, origin: str | None) -> Channel:
    channel = widget_channel(public_key)
    check_origin(channel, origin)
    return channel


@socket_db
def _hello(channel: Channel, visitor_id: str) -> tuple[bool, SenderHint]:
    return team_online(channel.company_id, channel.team_id), inbound.sender_hint(channel, visitor_id)


class VisitorConsumer(LiveJsonConsumer):
    socket_kind = "widget"

    async def connect(self) -> None:
        self.group = self.visitor_id = self.auth_deadline = None
        # What the socket knows of its visitor, so their messages skip the lookups: read at
        # auth, then the conversation of each message it stores (SenderHint).
        self.hint: SenderHint | None = None
        self.closing = False
        self.typing_throttle = TypingThrottle()
        try:
            if "token" in parse_qs(self.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
                raise WidgetError(
                    _("Send the chat session token in the first message, never in the address."),
                    status=400,
                    code="token_in_url",
                )
            self.channel = await _admit(self.scope["url_route"]["kwargs"]["public_key"], _header(self.scope, b"origin"))
        except WidgetError as exc:
            # Accept only to say why, so the widget can show it, then close.
            await self.accept()
            await self._refuse(exc.code, exc.message, 4000 + exc.status)
            return
        await self.accept()
        self.auth_deadline = asyncio.create_task(self._close_unless_authenticated())

    # --- Authentication: the first frame ------------------------------------------------

    async def _authenticate(self, content: Any) -> None:
        token = content.get("token") if isinstance(content, dict) and content.get("type") == "auth" else None
        if not isinstance(token, str):
            await self._refuse(
                "auth_required", _('The first message must be {"type": "auth", "token": ...}.'), BAD_REQUEST
            )
            return
        try:
            visitor_id = read_token(self.channel, token)
        except WidgetError as exc:
            await self._refuse(exc.code, exc.message, 4000 + exc.status)
            return
        self.auth_deadline.cancel()
        self.visitor_id = visitor_id
        self.group = visitor_group(self.channel.pk, self.visitor_id)
        await self.join_layer([self.group])  # typing
        await self.join_relay([self.group])  # messages, surveys: from the event log
        online, self.hint = await _hello(self.channel, visitor_id)
        await self.send_json({"type": "hello", "online": online})

    async def _close_unless_authenticated(self) -> None:
        await asyncio.sleep(AUTH_SECONDS)
        if self.visitor_id is None and not self.closing:
            await self._refuse("auth_timeout", _("The chat session was not opened in time."), AUTH_TIMEOUT)

    async def _refuse(self, code: str, message: str, close_code: int) -> None:
        """Say why, then close; frames still in flight are ignored."""
        self.closing = True
        await self._error(code, message)
        await self.close(code=close_code)

    async def refuse_frame(self, code: str, message: str) -> None:
        if self.visitor_id is None:  # an unreadable first frame is no auth frame either
            if not self.closing:
                await self._refuse(code, message, BAD_REQUEST)
            return
        await self._error(code, message)

    async def disconnect(self, code: int) -> None:
        if self.auth_deadline:
            self.auth_deadline.cancel()
        await self.leave_relay()
        await self.leave_layer()

    async def receive_json(self, content: Any, **kwargs) -> None:
        if self.closing:
            return
        if self.visitor_id is None:
            await self._authenticate(content)
            return
        if not isinstance(content, dict):
            await self._error("bad_message", _("Expected a JSON object."))
            return
        kind = content.get("type")
        if kind == "message":
            await self._receive_message(content)
        elif kind == "resume":
            after = content.get("after")
            if not is_id(after):
                await self._error("bad_resume", _("after must be a message id."))
                return
            # A page, oldest first; `more` says the widget must ask again from its last id.
            page, more = await socket_db(visitor_messages_after)(self.channel, self.visitor_id, after=after)
            await self.send_json({"type": "history", "messages": page, "more": more})
        elif kind == "typing":
            typing = content.get("typing")
            if not isinstance(typing, bool):
                await self._error("bad_typing", _("typing must be true or false."))
                return
            if self.typing_throttle.allows("visitor", typing):
                sends = await socket_db(notices.visitor_typing)(
                    channel_id=self.channel.pk, visitor_id=self.visitor_id, typing=typing
                )
                await notices.send_all_async(sends)
        elif kind == "rate":
            await self._receive_rating(content)
        elif kind == "ping":
            await self.join_layer()  # again if Redis lost the group
            online = await socket_db(team_online)(self.channel.company_id, self.channel.team_id)
            await self.send_json({"type": "pong", "online": online})
        else:
            await self._error("unknown_type", _("Unknown message type."))

    async def _receive_message(self, content: dict[str, Any]) -> None:
        body, client_id = content.get("body", ""), content.get("client_id")
        attachments = content.get("attachments", [])
        if not isinstance(body, str) or not isinstance(client_id, str) or not 8 <= len(client_id) <= 64:
            await self._error("bad_message", _("A message needs a text body and a client_id."), client_id)
            return
        if (
            not isinstance(attachments, list)
            or len(attachments) > MAX_ATTACHMENT_IDS
            or not all(is_id(attachment) for attachment in attachments)
        ):
            await self._error("bad_attachments", _("attachments must be a list of upload ids."), client_id)
            return
        try:
            message = await socket_db(inbound.receive)(
                self.channel,
                self.visitor_id,
                socket_client_ip(self.scope),
                body=body,
                client_id=client_id,
                attachments=attachments,
                hint=self.hint,
            )
        except ratelimits.RateLimited as exc:
            await self._refuse_rate_limited(exc, client_id)
            return
        except actions.ActionError as exc:
            await self._error(exc.code, exc.message, client_id)
            return
        except (OperationalError, InterfaceError):
            # The database is away (restarting, no pooled connection within the pool's
            # timeout): nothing was stored. Say so and keep the socket; the widget sends the
            # message again with its client_id, which stores it once. Before, the exception
            # closed the socket with no word and a traceback per message.
            log.warning("a widget message could not be stored: the database is unavailable", exc_info=True)
            await self.send_json(
                {
                    "type": "error",
                    "code": "unavailable",
                    "message": _("The message could not be saved yet; it will be sent again."),
                    "retry_after": UNAVAILABLE_RETRY_AFTER,
                    "client_id": client_id,
                }
            )
            return
        self.hint = SenderHint(conversation_id=message.conversation_id)
        await self.send_json({"type": "ack", "client_id": client_id, "message_id": message.pk})

    async def _receive_rating(self, content: dict[str, Any]) -> None:
        rating, comment, resolution = content.get("rating"), content.get("comment", ""), content.get("resolution")
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            await self._error("bad_rating", _("rating must be a whole number from 1 to 5."))
            return
        if comment is not None and not isinstance(comment, str):
            await self._error("bad_comment", _("comment must be text."))
            return
        if resolution is not None and not is_id(resolution):
            await self._error("bad_rating", _("resolution must be a number."))
            return
        try:
            survey = await socket_db(inbound.rate)(
                self.channel, self.visitor_id, rating=rating, comment=comment, resolution=resolution
            )
        except actions.ActionError as exc:
            await self._error(exc.code, exc.message)
            return
        await self.send_json({"type": "rated", "resolution": survey.resolution, "rating": survey.score})

    async def _error(self, code: str, message: str, client_id: Any = None) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, "client_id": client_id})

    async def _refuse_rate_limited(self, exc: ratelimits.RateLimited, client_id: Any) -> None:
        # The socket stays open: the visitor may send again after retry_after seconds.
        await self.send_json(
            {
                "type": "error",
                "code": exc.code,
                "message": exc.message,
                "retry_after": exc.retry_after,
                "client_id": client_id,
            }
        )

    async def visitor_message(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "message", "message": event["message"]})

    async def visitor_removed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "removed", "message_id": event["message_id"]})

    async def visitor_typing(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "typing", "name": event["name"], "typing": event["typing"]})

    async def visitor_survey(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "survey", "survey": event["survey"]})

    async def visitor_rated(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "rated", "resolution": event["resolution"], "rating": event["rating"]})
