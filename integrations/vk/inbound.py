"""A VK community's event (Callback API or Bots Long Poll) as one call of ``actions.receive_inbound``.

Only ``message_new`` is stored, and ``message_edit`` changes a stored message's text; every
other type, and anything malformed, is one log line and ignored, so neither VK's retries nor
the poller ever trip on it. The message's ``external_id`` is
``"<peer_id>:<conversation_message_id>"``: unique per community and the same in every retry of
the event, so a replay stores nothing twice.
"""

from __future__ import annotations

import logging
from typing import Any

import requests
import vk_api
from django.utils.translation import gettext as _

from helpdesk.conversations import actions
from helpdesk.conversations.inbound import ContactProfile, InboundAttachment, InboundMessage
from helpdesk.conversations.models import Channel, ContactIdentity, Message
from helpdesk.errors import ActionError

from .client import vk_session

log = logging.getLogger(__name__)

CHAT_PEER_OFFSET = 2_000_000_000  # a peer_id above this is a group chat (VK: 2e9 + chat id)
NAME_MAX_CHARS = 200


class Malformed(ValueError):
    """The event is not a message_new we can read."""


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{what} is not a number")
    return value


def _photo(photo: dict[str, Any]) -> InboundAttachment:
    url = ""
    if isinstance(photo.get("orig_photo"), dict):
        url = str(photo["orig_photo"].get("url") or "")
    sizes = [s for s in photo.get("sizes") or [] if isinstance(s, dict) and s.get("url")]
    if not url and sizes:
        url = str(max(sizes, key=lambda s: (s.get("width") or 0) * (s.get("height") or 0))["url"])
    name = f"photo{photo.get('owner_id', '')}_{photo.get('id', '')}.jpg"
    return InboundAttachment(
        file_id=f"photo{photo.get('owner_id', '')}_{photo.get('id', '')}", url=url, name=name, kind="photo"
    )


def _doc(doc: dict[str, Any]) -> InboundAttachment:
    size = doc.get("size")
    name, ext = str(doc.get("title") or "document"), str(doc.get("ext") or "")
    if ext and not name.lower().endswith(f".{ext.lower()}"):  # a title a person chose may lack it
        name = f"{name[: 250 - len(ext)]}.{ext}"
    return InboundAttachment(
        file_id=f"doc{doc.get('owner_id', '')}_{doc.get('id', '')}",
        url=str(doc.get("url") or ""),
        name=name[:255],
        size=size if isinstance(size, int) and not isinstance(size, bool) else None,
        kind="doc",
    )


def _web_url(value: Any) -> str:
    """A link VK gave, if it is one (a string); otherwise empty (the file is then only described)."""
    return value if isinstance(value, str) else ""


def _voice(voice: dict[str, Any]) -> InboundAttachment:
    """A voice message: its Ogg Opus recording (``link_ogg``), else the MP3 one (``link_mp3``)."""
    url, name = _web_url(voice.get("link_ogg")), "voice.ogg"
    if not url:
        url, name = _web_url(voice.get("link_mp3")), "voice.mp3"
    return InboundAttachment(
        file_id=f"audio_message{voice.get('owner_id', '')}_{voice.get('id', '')}",
        url=url,
        name=name,
        mime_type="audio/ogg" if name.endswith(".ogg") else "audio/mpeg",
        kind="audio_message",
    )


def _area(image: dict[str, Any]) -> int:
    width, height = image.get("width"), image.get("height")
    if not all(isinstance(side, int) and not isinstance(side, bool) for side in (width, height)):
        return 0
    return width * height


def _sticker(sticker: dict[str, Any]) -> InboundAttachment:
    """A sticker: the largest of its ``images`` (transparent PNGs), as a picture."""
    images = sticker.get("images")
    images = [i for i in images if isinstance(i, dict) and _web_url(i.get("url"))] if isinstance(images, list) else []
    url = _web_url(max(images, key=_area)["url"]) if images else ""
    return InboundAttachment(
        file_id=f"sticker{sticker.get('product_id', '')}_{sticker.get('sticker_id', '')}",
        url=url,
        name="sticker.png",
        mime_type="image/png",
        kind="sticker",
    )


def attachments(message: dict[str, Any]) -> list[InboundAttachment]:
    """Photos, documents, voice messages and stickers, described (url, name, size): the worker
    downloads them from the url (``files.fetch_file``). Other kinds (audio, video, links) by
    their type alone."""
    found = []
    for item in message.get("attachments") or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if not isinstance(kind, str):
            continue  # not an attachment VK describes
        body = item.get(kind)
        if kind == "photo" and isinstance(body, dict):
            found.append(_photo(body))
        elif kind == "doc" and isinstance(body, dict):
            found.append(_doc(body))
        elif kind == "audio_message" and isinstance(body, dict):
            found.append(_voice(body))
        elif kind == "sticker" and isinstance(body, dict):
            found.append(_sticker(body))
        elif kind:
            found.append(InboundAttachment(kind=kind[:40], name=kind[:40]))
    return found


def user_name(channel: Channel, user_id: int) -> str:
    """The person's first and last name from ``users.get``; empty if VK can't say."""
    if user_id <= 0:  # a community writing (negative ids) has no user profile
        return ""
    try:
        token = channel.secret_values()["access_token"]
        (user,) = vk_session(token).method("users.get", {"user_ids": user_id})
    except (vk_api.exceptions.VkApiError, requests.RequestException, ValueError, KeyError, TypeError) as exc:
        log.warning("vk channel %s: users.get failed for %s (%s)", channel.pk, user_id, type(exc).__name__)
        return ""
    if not isinstance(user, dict) or user.get("deactivated"):
        return ""
    return " ".join(str(user.get(part) or "") for part in ("first_name", "last_name")).strip()[:NAME_MAX_CHARS]


def to_inbound(channel: Channel, event: Any) -> InboundMessage:
    """The ``InboundMessage`` of a ``message_new`` event; ``Malformed`` if it isn't one."""
    if not isinstance(event, dict) or not isinstance(event.get("object"), dict):
        raise Malformed("not an event object")
    message = event["object"].get("message")
    if not isinstance(message, dict):
        raise Malformed("no message")
    from_id = _int(message.get("from_id"), "from_id")
    peer_id = _int(message.get("peer_id"), "peer_id")
    number = _int(message.get("conversation_message_id"), "conversation_message_id")
    text = message.get("text", "")
    if not isinstance(text, str):
        raise Malformed("text is not text")
    if message.get("out") == 1 or from_id < 0:
        raise Malformed("not a customer's message")
    thread_id = thread_title = None
    if peer_id > CHAT_PEER_OFFSET:
        thread_id = str(peer_id)
        thread_title = _("VK chat %(number)s") % {"number": peer_id - CHAT_PEER_OFFSET}
    known = ContactIdentity.objects.filter(channel=channel, external_id=str(from_id)).exists()
    return InboundMessage(
        external_contact_id=str(from_id),
        text=text.replace("\x00", ""),
        profile=ContactProfile(name="" if known else user_name(channel, from_id)),
        attachments=attachments(message),
        external_id=f"{peer_id}:{number}",
        thread_id=thread_id,
        thread_title=thread_title or "",
    )


def edit(channel: Channel, event: Any) -> Message | None:
    """``message_edit`` (its object is the message, edited): the stored message's text changes."""
    message = event.get("object")
    try:
        if not isinstance(message, dict):
            raise Malformed("no message")
        peer_id = _int(message.get("peer_id"), "peer_id")
        number = _int(message.get("conversation_message_id"), "conversation_message_id")
        text = message.get("text", "")
        if not isinstance(text, str):
            raise Malformed("text is not text")
    except Malformed as exc:
        log.info("vk channel %s: ignored a malformed message_edit (%s)", channel.pk, exc)
        return None
    if message.get("out") == 1:
        return None  # our own reply, edited: not the customer's
    body = InboundMessage(
        external_contact_id="", text=text.replace("\x00", ""), attachments=attachments(message)
    ).body()
    try:
        return actions.edit_inbound(channel=channel, external_id=f"{peer_id}:{number}", text=body)
    except ActionError as exc:
        log.info("vk channel %s: an edit was not stored (%s)", channel.pk, exc.code)
        return None


def receive(channel: Channel, event: Any) -> Message | None:
    """Store one VK event: the stored (or already stored) message, or None when it was ignored."""
    kind = event.get("type") if isinstance(event, dict) else None
    if kind == "message_edit":
        return edit(channel, event)
    if kind != "message_new":
        log.info("vk channel %s: ignored an event of type %.40r", channel.pk, kind)
        return None
    try:
        message = to_inbound(channel, event)
    except Malformed as exc:
        log.info("vk channel %s: ignored a malformed message_new (%s)", channel.pk, exc)
        return None
    if not message.body() and not message.attachments:
        log.info("vk channel %s: ignored an empty message_new", channel.pk)
        return None
    return actions.receive_inbound(channel=channel, message=message)
