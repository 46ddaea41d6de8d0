"""Widget visitors: signed tokens, allowed origins, and what a visitor may see."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.utils.translation import gettext as _

from helpdesk.conversations.models import Channel, ChannelKind, Direction, Message, MessageKind

SALT = "smartchat.widget.visitor"
# What a public key is made of (token_urlsafe). Anything else can't be one and never reaches
# the query (a NUL byte from the URL's %00 would fail it).
KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,40}")


class WidgetError(Exception):
    """A refused widget request: ``status`` for HTTP, ``code`` for the socket and scripts."""

    def __init__(self, message: str, *, status: int, code: str):
        super().__init__(message)
        self.message, self.status, self.code = message, status, code


def widget_channel(public_key: str) -> Channel:
    channel = None
    if KEY_RE.fullmatch(public_key):
        channel = (
            Channel.objects.select_related("company")
            .filter(public_key=public_key, kind=ChannelKind.WIDGET, archived_at__isnull=True)
            .first()
        )
    if channel is None:
        raise WidgetError(_("This chat widget does not exist."), status=404, code="unknown_channel")
    return channel


def normalise_origin(origin: str) -> str:
    """``scheme://host[:port]``, or "" for anything that is not an http(s) origin."""
    try:
        parts = urlsplit(origin.strip().lower())
        given_port = parts.port  # a port out of range or not a number raises, as does "[::1"
    except ValueError:
        return ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    default_port = {"http": 80, "https": 443}[parts.scheme]
    port = f":{given_port}" if given_port and given_port != default_port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def check_origin(channel: Channel, origin: str | None) -> str:
    """The page's origin, if this widget may be embedded there; otherwise a 403."""
    allowed = {normalise_origin(o) for o in channel.settings.get("allowed_origins", [])}
    wanted = normalise_origin(origin or "")
    if not wanted:
        raise WidgetError(_("The request has no valid Origin header."), status=403, code="origin_missing")
    if "*" not in channel.settings.get("allowed_origins", []) and wanted not in allowed:
        raise WidgetError(
            _("This chat widget is not allowed on %(origin)s.") % {"origin": wanted}, status=403, code="origin_denied"
        )
    return wanted


def issue_token(channel: Channel, visitor_id: str | None = None) -> tuple[str, str]:
    visitor_id = visitor_id or uuid.uuid4().hex
    return signing.dumps({"c": channel.pk, "v": visitor_id}, salt=SALT, compress=True), visitor_id


def read_token(channel: Channel, token: str) -> str:
    """The visitor id in a token issued for this channel; forged, foreign or expired ones fail."""
    try:
        data = signing.loads(token, salt=SALT, max_age=settings.WIDGET_TOKEN_MAX_AGE_DAYS * 86400)
    except signing.SignatureExpired:
        raise WidgetError(_("Your chat session has expired."), status=401, code="token_expired") from None
    except signing.BadSignature:
        raise WidgetError(_("Your chat session is not valid."), status=401, code="token_invalid") from None
    if not isinstance(data, dict) or data.get("c") != channel.pk or not isinstance(data.get("v"), str):
        raise WidgetError(_("Your chat session is not valid."), status=401, code="token_invalid")
    return data["v"]


def visitor_group(channel_id: int, visitor_id: str) -> str:
    return f"visitor-{channel_id}-{visitor_id}"


def public_message(message: dict[str, Any] | Message) -> dict[str, Any]:
    """A message as the visitor sees it: no notes, no internal ids of employees."""
    if isinstance(message, Message):
        message = {
            "id": message.pk,
            "direction": message.direction,
            "author_name": message.author_name,
            "body": message.body,
            "created_at": message.created_at.isoformat(),
        }
    return {
        "id": message["id"],
        "from": "visitor" if message["direction"] == Direction.INBOUND else "agent",
        "author_name": message["author_name"] if message["direction"] != Direction.INBOUND else "",
        "body": message["body"],
        "created_at": message["created_at"],
    }


def visitor_history(channel: Channel, visitor_id: str, *, after: int = 0, limit: int = 200) -> list[dict[str, Any]]:
    messages = (
        Message.objects.filter(
            channel=channel,
            conversation__contact__identities__channel=channel,
            conversation__contact__identities__external_id=visitor_id,
            conversation__deleted_at__isnull=True,
            kind=MessageKind.MESSAGE,
            deleted_at__isnull=True,
            pk__gt=after,
        )
        .select_related("author_employee", "author_contact")
        .order_by("-pk")[:limit]
    )
    return [public_message(m) for m in reversed(list(messages))]
