"""Widget visitors: signed tokens, allowed origins, and what a visitor may see."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db.models import F
from django.utils.translation import gettext as _

from helpdesk.conversations.attachments import link
from helpdesk.conversations.models import (
    Attachment,
    AttachmentStatus,
    Channel,
    ChannelKind,
    Direction,
    Message,
    MessageKind,
)

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


def _file_facts(attachment: Attachment) -> dict[str, Any]:
    """What a message snapshot says of a file (``snapshots.attachment_data``), without its link."""
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "status": attachment.status,
        "image": attachment.is_image,
    }


def visitor_files(files: Iterable[dict[str, Any]], contact_id: int) -> list[dict[str, Any]]:
    """A message's files as its visitor sees them: the stored ones, each with a link made for
    this visitor (``visitor_contact_id``), never an employee's link. Callers pass only
    messages the visitor may see (no notes, nothing deleted)."""
    return [
        {
            "id": file["id"],
            "name": file["name"],
            "content_type": file["content_type"],
            "size": file["size"],
            "image": bool(file["image"]),
            # A link names the file's id and name only; no row needs to be read to make it.
            "url": link(Attachment(pk=file["id"], name=file["name"]), visitor_contact_id=contact_id),
        }
        for file in files
        if file.get("status") == AttachmentStatus.READY
    ]


def public_message(message: dict[str, Any] | Message, *, contact_id: int) -> dict[str, Any]:
    """A message as the visitor sees it: no notes, no internal ids of employees, and its files
    with links for the conversation's contact (``contact_id``)."""
    if isinstance(message, Message):
        message = {
            "id": message.pk,
            "direction": message.direction,
            "author_name": message.author_name,
            "body": message.body,
            "created_at": message.created_at.isoformat(),
            "attachments": [_file_facts(attachment) for attachment in message.attachments.all()],
        }
    return {
        "id": message["id"],
        "from": "visitor" if message["direction"] == Direction.INBOUND else "agent",
        "author_name": message["author_name"] if message["direction"] != Direction.INBOUND else "",
        "body": message["body"],
        "created_at": message["created_at"],
        "attachments": visitor_files(message.get("attachments") or [], contact_id),
    }


# A widget's resume is answered a page at a time, oldest first: one that was away longer
# than a page asks again from the last id it got until `more` is false (docs/channels.md).
RESUME_PAGE = 200


def _visible_messages(channel: Channel, visitor_id: str, after: int):
    return (
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
        .annotate(visitor_contact_id=F("conversation__contact_id"))
        .prefetch_related("attachments")
    )


def visitor_history(channel: Channel, visitor_id: str, *, after: int = 0, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` messages after ``after``, oldest first: what a page load shows."""
    messages = _visible_messages(channel, visitor_id, after).order_by("-pk")[:limit]
    return [public_message(m, contact_id=m.visitor_contact_id) for m in reversed(list(messages))]


def visitor_messages_after(
    channel: Channel, visitor_id: str, *, after: int, limit: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """The oldest ``limit`` messages after ``after`` in id order, and whether more follow.

    Nothing after ``after`` is skipped: the next page starts after this page's last id.
    """
    limit = RESUME_PAGE if limit is None else limit
    messages = list(_visible_messages(channel, visitor_id, after).order_by("pk")[: limit + 1])
    page = [public_message(m, contact_id=m.visitor_contact_id) for m in messages[:limit]]
    return page, len(messages) > limit
