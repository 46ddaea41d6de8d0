"""One Telegram ``Update`` (a webhook's JSON body or one of getUpdates' results) → one stored message.

Private chats: the contact is the user (their chat id). Groups and supergroups: the
conversation is the group's (``thread_id`` = the group's chat id, its title the contact's
name) and each message is its sender's. Text, or a caption as text; photos, documents, voice
notes, videos, video notes, audio and stickers are described as attachments, fetched later by
the worker (``files.fetch_file``: getFile).
``/start <payload>`` (a ``t.me/<bot>?start=<payload>`` link) is kept on a new contact as its
``source``. An ``edited_message`` updates the stored text (the old one kept as a revision);
a ``callback_query`` answers the consent question (``consent.py``), which, when the channel
asks for consent, holds a private chat's messages until it is accepted. Anything else (channel
posts, membership changes, malformed updates) is logged in one line and acknowledged.
"""

from __future__ import annotations

import logging
from typing import Any

import telegram
from django.conf import settings

from helpdesk.conversations import actions
from helpdesk.conversations.inbound import ContactProfile, InboundAttachment, InboundMessage
from helpdesk.conversations.models import Channel, Message
from helpdesk.errors import ActionError

from . import consent

log = logging.getLogger(__name__)

GROUP_TYPES = (telegram.constants.ChatType.GROUP, telegram.constants.ChatType.SUPERGROUP)
SOURCE_LIMIT = 64  # Telegram's deep-link payloads are at most 64 characters


def receive_update(channel: Channel, data: Any) -> Message | None:
    """Handle one update (a dict as Telegram sends it); the stored message, or None.

    A message is stored (or held for consent, ``consent.gate``); an edit updates the stored
    text (``actions.edit_inbound``); a button press answers the consent question. What the bot
    says back is sent by ``send_calls``: never inside a webhook's request.
    """
    update = parse(data)
    if update is None:
        return None
    stored, calls = None, []
    try:
        if update.callback_query is not None:
            calls = consent.on_callback(channel, update.callback_query)
        elif update.edited_message is not None:
            _edit(channel, update, data)
        elif (message := _to_inbound(update, data)) is not None:
            store, calls = consent.gate(channel, update.message, message, data)
            if store:
                stored = actions.receive_inbound(channel=channel, message=message)
    except ActionError as exc:  # a text we can't store (a NUL, too long): never retried forever
        log.warning("telegram: update %s not stored: %s", update.update_id, exc.code)
    if calls:
        send_calls(channel, calls)
    return stored


def send_calls(channel: Channel, calls: list[dict]) -> None:
    """The bot's answers: at once from the poller (polling mode), else through the worker."""
    from . import tasks

    if channel.settings.get("mode") == "polling":
        tasks.run_calls(channel, calls)
    else:
        tasks.bot_calls.apply_async((channel.pk, calls), queue=settings.DELIVERY_QUEUE)


def _edit(channel: Channel, update: telegram.Update, data: dict) -> None:
    edited = update.edited_message
    external_id = f"{edited.chat.id}:{edited.message_id}"
    if consent.edit_held(channel, external_id, data["edited_message"]):
        return
    text = edited.text or edited.caption or ""
    body = InboundMessage(external_contact_id="", text=text, attachments=attachments(edited)).body()
    actions.edit_inbound(channel=channel, external_id=external_id, text=body)


# The fields of an update that this package reads, with the types the Bot API gives them. PTB's
# ``de_json`` copies values as they come, so a ``text`` that is a list would reach our code: an
# update whose fields break these types is malformed (logged, acknowledged, nothing stored).
_USER = {"id": int, "first_name": str, "last_name": str, "username": str, "language_code": str, "is_premium": bool}
_CHAT = {"id": int, "type": str, "title": str, "first_name": str, "last_name": str, "username": str}
_FILE = {"file_id": str, "file_name": str, "mime_type": str, "file_size": int, "is_animated": bool, "is_video": bool}
_MESSAGE = {"message_id": int, "text": str, "caption": str}
_MEDIA = ("document", "video", "audio", "voice", "video_note", "animation", "sticker")


def _wrong_fields(obj: Any, types: dict[str, type], where: str) -> str | None:
    if not isinstance(obj, dict):
        return f"{where} is not an object"
    for key, expected in types.items():
        value = obj.get(key)
        # bool is an int to Python, never to the Bot API
        if value is not None and (not isinstance(value, expected) or (expected is int and isinstance(value, bool))):
            return f"{where}.{key} is not a {expected.__name__}"
    return None


def _wrong_message(message: Any, where: str) -> str | None:
    problem = _wrong_fields(message, _MESSAGE, where)
    if problem is None and "from" in message:
        problem = _wrong_fields(message["from"], _USER, f"{where}.from")
    if problem is None and "chat" in message:
        problem = _wrong_fields(message["chat"], _CHAT, f"{where}.chat")
    if problem is None and "reply_to_message" in message:
        problem = _wrong_fields(message["reply_to_message"], _MESSAGE, f"{where}.reply_to_message")
    if problem is None and "photo" in message:
        sizes = message["photo"]
        if not isinstance(sizes, list):
            return f"{where}.photo is not a list"
        problem = next((p for size in sizes if (p := _wrong_fields(size, _FILE, f"{where}.photo[]"))), None)
    for kind in _MEDIA:
        if problem is None and kind in message:
            problem = _wrong_fields(message[kind], _FILE, f"{where}.{kind}")
    return problem


def shape_problem(data: dict) -> str | None:
    """What is wrong with the types of the fields we read, or None."""
    for key in ("message", "edited_message"):
        if key in data and (problem := _wrong_message(data[key], key)):
            return problem
    if "callback_query" in data:
        press = data["callback_query"]
        problem = _wrong_fields(press, {"id": str, "data": str}, "callback_query")
        if problem is None and "from" in press:
            problem = _wrong_fields(press["from"], _USER, "callback_query.from")
        if problem is None and "message" in press:
            problem = _wrong_message(press["message"], "callback_query.message")
        return problem
    return None


def parse(data: Any) -> telegram.Update | None:
    """The update, or None (logged) when it isn't one."""
    if not isinstance(data, dict):
        log.warning("telegram: ignored an update that is not an object (%s)", type(data).__name__)
        return None
    if problem := shape_problem(data):
        log.warning("telegram: ignored a malformed update %.20r (%s)", data.get("update_id"), problem)
        return None
    try:
        update = telegram.Update.de_json(data, None)
    except Exception as exc:  # the library raises KeyError/TypeError/ValueError on bad shapes
        log.warning("telegram: ignored a malformed update %r (%s)", data.get("update_id"), type(exc).__name__)
        return None
    if update is None:
        log.warning("telegram: ignored an empty update")
    return update


def to_inbound(data: Any) -> InboundMessage | None:
    """The normalised message of an update, or None (logged) for what we don't handle."""
    update = parse(data)
    return _to_inbound(update, data) if update is not None else None


def _to_inbound(update: telegram.Update, data: dict) -> InboundMessage | None:
    message = update.message
    if message is None:
        kinds = sorted(key for key in data if key != "update_id")[:3]
        log.info("telegram: ignored update %r of a kind we don't handle: %s", data.get("update_id"), kinds)
        return None
    chat, sender = message.chat, message.from_user
    if sender is None or chat.type not in (telegram.constants.ChatType.PRIVATE, *GROUP_TYPES):
        log.info("telegram: ignored update %r from a %s chat with no sender", update.update_id, chat.type)
        return None
    text = message.text or message.caption or ""
    files = attachments(message)
    if not text.strip() and not files:  # a service message (members, pins, titles), a poll, a location…
        log.info("telegram: ignored update %r: a message with no text or file we handle", update.update_id)
        return None
    extra: dict[str, Any] = {}
    if sender.is_premium:
        extra["premium"] = True
    command, _, payload = text.partition(" ")
    if (command == "/start" or command.startswith("/start@")) and payload.strip():
        extra["source"] = payload.strip()[:SOURCE_LIMIT]  # where they came from: t.me/<bot>?start=…
    group = chat.type in GROUP_TYPES
    reply = message.reply_to_message
    return InboundMessage(
        external_contact_id=str(sender.id),
        text=text,
        profile=ContactProfile(
            name=sender.full_name, username=sender.username or "", language=sender.language_code or "", extra=extra
        ),
        attachments=files,
        external_id=f"{chat.id}:{message.message_id}",
        reply_to_external_id=f"{chat.id}:{reply.message_id}" if reply is not None else None,
        thread_id=str(chat.id) if group else None,
        thread_title=(chat.title or "") if group else "",
    )


# A file's name when Telegram gives none (only documents, videos, audio and animations carry
# their own): with the extension of what Telegram sends for that kind.
DEFAULT_NAMES = {
    "document": "document",
    "video": "video.mp4",
    "audio": "audio.mp3",
    "voice": "voice.ogg",
    "video_note": "video_note.mp4",
    "animation": "animation.mp4",
}


def attachments(message: telegram.Message) -> list[InboundAttachment]:
    """The files a message carries, as Telegram describes them (the largest size of a photo).

    Each one's ``file_id`` is what ``files.fetch_file`` asks ``getFile`` for; ``size`` is
    Telegram's ``file_size``, so a file over the limit is refused before it is fetched.
    """
    found: list[InboundAttachment] = []
    if message.photo:
        best = message.photo[-1]  # sizes come smallest first
        found.append(
            InboundAttachment(
                file_id=best.file_id, name="photo.jpg", mime_type="image/jpeg", size=best.file_size, kind="photo"
            )
        )
    for kind, default_name in DEFAULT_NAMES.items():
        media = getattr(message, kind, None)
        if media is not None:
            found.append(
                InboundAttachment(
                    file_id=media.file_id,
                    name=getattr(media, "file_name", None) or default_name,
                    mime_type=getattr(media, "mime_type", None) or "",
                    size=media.file_size,
                    kind=kind,
                )
            )
    if message.sticker is not None:
        sticker = message.sticker
        # A static sticker is a WebP image; a video sticker WebM; an animated one a gzipped
        # Lottie file (.tgs), which the type check refuses.
        if sticker.is_animated:
            name, mime_type = "sticker.tgs", "application/x-tgsticker"
        elif sticker.is_video:
            name, mime_type = "sticker.webm", "video/webm"
        else:
            name, mime_type = "sticker.webp", "image/webp"
        found.append(
            InboundAttachment(
                file_id=sticker.file_id, name=name, mime_type=mime_type, size=sticker.file_size, kind="sticker"
            )
        )
    if message.animation is not None and message.document is not None:
        found = [f for f in found if f.kind != "document"]  # an animation also comes as a document
    return found
