"""Sending one delivery through the Bot API, and what Telegram's refusals mean for it.

A reply goes to the conversation contact's chat on this channel (a person's private chat, or
the group for a group conversation): its text by ``sendMessage``; with files, each file by
``sendPhoto`` (a still image up to 10 MB) or ``sendDocument`` (anything else, under its own
name), in order, the text as the first file's caption when it fits (1024 characters) or as a
message of its own before them. Telegram has no idempotency key and no way to send a photo
and a document as one message, so a reply with files is several sends: each one that
succeeds is recorded on the delivery at once (``actions.record_delivery_part``) and a retry
sends only the parts not recorded (docs/channels.md, "Several sends in one delivery"). The
provider id is ``"<chat id>:<message id>[,<message id>…]"``, every message the reply became.

Failures become ``DeliveryError``:
permanent when the chat is gone for us (bot blocked, kicked, chat not found, a bad token),
retryable when Telegram asks us to wait (429, with its ``retry_after``), answers an error
(5xx) or can't be reached (no connection was made), and ``outcome_unknown`` when the request
may have reached Telegram but no answer came (``sent_nothing``): the delivery then waits for a
person, since Telegram has no idempotency key and a blind resend could post it twice.
The error's text is Telegram's own words, never the token. Each worker thread keeps one open
Bot per token (``client.call``), so consecutive sends reuse its connection.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import timedelta

import httpx
import telegram
import telegram.warnings
from django.conf import settings
from django.utils.translation import gettext as _

from helpdesk.conversations import actions
from helpdesk.conversations.adapters import DeliveryError
from helpdesk.conversations.models import Attachment, AttachmentStatus, ContactIdentity, Conversation

from . import client, health

TEXT_LIMIT = 4096  # Telegram's limit for one message's text
CAPTION_LIMIT = 1024  # and for a photo's or document's caption
PHOTO_LIMIT = 10 * 1024 * 1024  # sendPhoto takes photos up to 10 MB; a larger image goes as a document
# Images Telegram shows as a photo. A GIF goes as a document, which Telegram shows animated
# (sendPhoto would keep its first frame only).
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
# Telegram's 400s for an image it won't take as a photo (PHOTO_INVALID_DIMENSIONS,
# IMAGE_PROCESS_FAILED, PHOTO_EXT_INVALID, …): such a file goes again as a document.
NOT_A_PHOTO = re.compile(r"PHOTO_|IMAGE_PROCESS", re.IGNORECASE)


# httpx failures that prove the request never reached Telegram: no connection was made (refused,
# DNS, connect timeout, a proxy refusing the tunnel), none was free in the pool, or the request
# could not be formed. PTB 22 (telegram/request/_httpxrequest.py) raises ``TimedOut`` from every
# ``httpx.TimeoutException`` and ``NetworkError`` from every other ``httpx.HTTPError``, the httpx
# error as ``__cause__``. Everything else may have delivered the request: a read timeout, a write
# timeout (asyncio still flushes what was buffered), a connection lost before the answer
# (``ReadError``, ``RemoteProtocolError``; httpcore swallows a ``WriteError`` mid-request and
# reads on, so a connection lost while sending also ends as one of these).
NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


def sent_nothing(exc: telegram.error.TelegramError) -> bool:
    """Is it certain that the failed request did not reach Telegram (or that Telegram refused it)?"""
    cause = exc.__cause__
    if isinstance(cause, httpx.HTTPError):  # PTB's wrapping of a transport failure
        return isinstance(cause, NOT_SENT)
    if isinstance(exc, telegram.error.TimedOut):  # a timeout with no cause we can place
        return False
    # Telegram answered with an error status: no cause, or its page that wasn't JSON (a
    # TelegramError). Any other cause is an HTTP layer failing in a way we can't place, or a
    # success answer that could not be read ("Invalid server response"): it may have gone.
    return cause is None or isinstance(cause, telegram.error.TelegramError)


def scrub(text: str, token: str) -> str:
    """``text`` without the bot token or its secret half (an httpx error may quote the URL)."""
    for part in (token, token.partition(":")[2]):
        if part:
            text = text.replace(part, "…")
    return text


def chat_id(conversation: Conversation) -> str | None:
    """The conversation contact's id on its channel: a user's or a group's chat id."""
    return (
        ContactIdentity.objects.filter(channel_id=conversation.channel_id, contact_id=conversation.contact_id)
        .values_list("external_id", flat=True)
        .first()
    )


@dataclass(frozen=True)
class Part:
    """One send of a delivery: its text (``sendMessage``) or one of its files, maybe captioned."""

    key: str  # what ``Delivery.parts`` records it as: "text", or "file:<attachment id>"
    text: str = ""
    attachment: Attachment | None = None
    caption: str | None = None


def as_photo(attachment: Attachment) -> bool:
    """Sent by sendPhoto (shown as a picture): a still image Telegram takes as a photo."""
    return attachment.is_image and attachment.content_type in PHOTO_TYPES and (attachment.size or 0) <= PHOTO_LIMIT


def plan(message) -> list[Part]:
    """The sends of a reply, in order: its text and each of its ready files.

    With files, the text is the first file's caption when it fits Telegram's caption limit,
    otherwise a message of its own before them. Without files it is one sendMessage.
    """
    text = message.body[:TEXT_LIMIT]
    files = list(message.attachments.filter(status=AttachmentStatus.READY).order_by("pk"))
    if not files:
        return [Part("text", text=text)]
    parts = []
    # Telegram counts a caption in UTF-16 code units (an emoji outside the BMP is two).
    fits = len(text.encode("utf-16-le")) // 2 <= CAPTION_LIMIT
    caption = text if text.strip() and fits else None
    if text.strip() and caption is None:
        parts.append(Part("text", text=text))
    for index, attachment in enumerate(files):
        parts.append(Part(f"file:{attachment.pk}", attachment=attachment, caption=caption if index == 0 else None))
    return parts


def _read(attachment: Attachment) -> bytes:
    try:
        with attachment.file.open("rb") as stream:
            return stream.read()
    except (OSError, ValueError):  # gone from storage: trying again won't bring it back
        raise DeliveryError(
            _("The file “%(name)s” can't be read from storage.") % {"name": attachment.name}, permanent=True
        ) from None


async def _send_part(open_bot: telegram.Bot, chat: str, part: Part, data: bytes | None, *, photo: bool) -> int:
    # How long to wait for Telegram's answer once the request is sent: past it, the outcome is unknown.
    wait = settings.TELEGRAM_SEND_TIMEOUT
    if part.attachment is None:
        sent = await open_bot.send_message(chat_id=chat, text=part.text, read_timeout=wait)
    elif photo:
        sent = await open_bot.send_photo(
            chat_id=chat, photo=data, filename=part.attachment.name, caption=part.caption, read_timeout=wait
        )
    else:
        sent = await open_bot.send_document(
            chat_id=chat, document=data, filename=part.attachment.name, caption=part.caption, read_timeout=wait
        )
    return sent.message_id


def _send(channel, token: str, chat: str, part: Part) -> int:
    """Send one part; its message id, or the ``DeliveryError`` Telegram's refusal means."""
    data = _read(part.attachment) if part.attachment is not None else None
    photo = part.attachment is not None and as_photo(part.attachment)
    try:
        try:
            # This worker thread's open Bot for the token: its connection is reused from send to send.
            return client.call(token, lambda open_bot: _send_part(open_bot, chat, part, data, photo=photo))
        except telegram.error.BadRequest as exc:
            if not (photo and NOT_A_PHOTO.search(exc.message)):
                raise
            # Not a photo to Telegram (its dimensions, its format): nothing was sent, so the
            # same file goes as a document instead.
            return client.call(token, lambda open_bot: _send_part(open_bot, chat, part, data, photo=False))
    except telegram.error.InvalidToken as exc:
        health.token_refused(channel)  # the channel is broken: admins are told, once
        raise classified(exc, token) from None
    except telegram.error.TelegramError as exc:
        raise classified(exc, token, part=part) from None


def unanswered(part: Part, reason: str) -> str:
    """The error shown for a part that may have reached the customer: which part, and why."""
    if part.attachment is None:
        return _("Telegram did not answer the sending of the text (%(reason)s): it may have reached the customer.") % {
            "reason": reason
        }
    return _(
        "Telegram did not answer the sending of the file “%(name)s” (%(reason)s): it may have reached the customer."
    ) % {"name": part.attachment.name, "reason": reason}


def classified(exc: telegram.error.TelegramError, token: str, *, part: Part | None = None) -> DeliveryError:
    """What a Bot API error means for a delivery (see the module's docstring)."""
    if not sent_nothing(exc):
        reason = scrub(exc.message, token)
        message = unanswered(part, reason) if part is not None else reason
        return DeliveryError(message, permanent=False, outcome_unknown=True)
    if isinstance(exc, telegram.error.RetryAfter):
        with warnings.catch_warnings():  # PTB 22 warns that it will become a timedelta; both are handled
            warnings.simplefilter("ignore", telegram.warnings.PTBDeprecationWarning)
            wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return DeliveryError(scrub(exc.message, token), permanent=False, retry_after=seconds)
    if isinstance(exc, telegram.error.InvalidToken):
        return DeliveryError(_("Telegram did not accept the bot token."), permanent=True)
    if isinstance(exc, telegram.error.NetworkError):  # no connection, a 5xx; BadRequest is a NetworkError too
        return DeliveryError(scrub(exc.message, token), permanent=isinstance(exc, telegram.error.BadRequest))
    if isinstance(exc, (telegram.error.Forbidden, telegram.error.ChatMigrated)):
        return DeliveryError(scrub(exc.message, token), permanent=True)
    # Conflict, EndPointNotFound, …: worth another try
    return DeliveryError(scrub(exc.message, token), permanent=False)


def send(delivery) -> str:
    token = delivery.channel.secret_values().get("bot_token", "")
    chat = chat_id(delivery.message.conversation)
    if not token:
        raise DeliveryError(_("The channel has no bot token."), permanent=True)
    if not chat:
        raise DeliveryError(_("This conversation has no Telegram chat to answer."), permanent=True)
    parts = plan(delivery.message)
    done = dict(delivery.parts or {})
    for part in parts:
        if part.key in done:  # went out in an earlier attempt: never sent twice
            continue
        message_id = str(_send(delivery.channel, token, chat, part))
        done[part.key] = message_id
        if len(parts) > 1:  # kept before the next send, so a failure there retries only the rest
            actions.record_delivery_part(delivery, part.key, message_id)
    return f"{chat}:" + ",".join(done[part.key] for part in parts)
