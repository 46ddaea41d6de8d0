"""Sending one delivery through the Bot API, and what Telegram's refusals mean for it.

A reply goes to the conversation contact's chat on this channel (a person's private chat, or
the group for a group conversation) with ``sendMessage``. Failures become ``DeliveryError``:
permanent when the chat is gone for us (bot blocked, kicked, chat not found, a bad token),
retryable when Telegram asks us to wait (429, with its ``retry_after``) or can't be reached.
The error's text is Telegram's own words, never the token. Each worker thread keeps one open
Bot per token (``client.call``), so consecutive sends reuse its connection.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

import telegram
import telegram.warnings
from django.utils.translation import gettext as _

from helpdesk.conversations.adapters import DeliveryError
from helpdesk.conversations.models import ContactIdentity, Conversation

from . import client, health

TEXT_LIMIT = 4096  # Telegram's limit for one message's text


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


def _send_message(token: str, chat: str, text: str) -> int:
    # This worker thread's open Bot for the token: its connection is reused from send to send.
    sent = client.call(token, lambda open_bot: open_bot.send_message(chat_id=chat, text=text))
    return sent.message_id


def send(delivery) -> str:
    token = delivery.channel.secret_values().get("bot_token", "")
    chat = chat_id(delivery.message.conversation)
    if not token:
        raise DeliveryError(_("The channel has no bot token."), permanent=True)
    if not chat:
        raise DeliveryError(_("This conversation has no Telegram chat to answer."), permanent=True)
    text = delivery.message.body[:TEXT_LIMIT]
    try:
        return f"{chat}:{_send_message(token, chat, text)}"
    except telegram.error.RetryAfter as exc:
        with warnings.catch_warnings():  # PTB 22 warns that it will become a timedelta; both are handled
            warnings.simplefilter("ignore", telegram.warnings.PTBDeprecationWarning)
            wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        raise DeliveryError(scrub(exc.message, token), permanent=False, retry_after=seconds) from None
    except telegram.error.InvalidToken:
        health.token_refused(delivery.channel)  # the channel is broken: admins are told, once
        raise DeliveryError(_("Telegram did not accept the bot token."), permanent=True) from None
    except telegram.error.NetworkError as exc:  # TimedOut too; BadRequest is a NetworkError as well
        permanent = isinstance(exc, telegram.error.BadRequest)
        raise DeliveryError(scrub(exc.message, token), permanent=permanent) from None
    except (telegram.error.Forbidden, telegram.error.ChatMigrated) as exc:
        raise DeliveryError(scrub(exc.message, token), permanent=True) from None
    except telegram.error.TelegramError as exc:  # Conflict, EndPointNotFound, …: worth another try
        raise DeliveryError(scrub(exc.message, token), permanent=False) from None
