"""Consent to personal-data processing, asked before any conversation opens (a channel option).

With ``consent_required`` on, a private chat's messages wait in ``HeldUpdate`` until the
customer answers the consent question (the channel's ``consent_text``, or the default one in
the customer's language, with Accept / Decline buttons). No contact, conversation or event
exists for them meanwhile, so no agent sees anything.

- **Accept** (``callback_query`` ``consent:accept:<version>``): the decision is recorded on the
  contact (``actions.record_consent``: time, text version, the text shown), the held messages
  become the conversation's messages in their order (``receive_inbound``, idempotent), the
  question's message is edited to say so and the button press is answered.
- **Decline**: the held messages are dropped (kept, never shown), a polite goodbye.
- **/stop**: consent withdrawn (recorded); later messages are held and the question asked again.

Group chats are not asked (one member's consent can't stand for the group). Everything here
returns the Bot API calls to make (``{"method": ..., params}``): ``inbound`` sends them from the
poller in polling mode and through the worker in webhook mode, never inside the webhook's
request. A replayed update or a second press of a button changes nothing and says nothing new.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import telegram
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from helpdesk.conversations import actions, consents
from helpdesk.conversations.inbound import ContactProfile, InboundMessage
from helpdesk.conversations.models import Channel, ConsentDecision
from helpdesk.errors import ActionError

from .models import HeldUpdate

log = logging.getLogger(__name__)

Call = dict[str, Any]
TEXT_LIMIT = 4096
# Ask again when they keep writing without answering, at most this often.
PROMPT_AGAIN_AFTER = timedelta(hours=1)
PREFIX = "consent"

DEFAULT_TEXT = gettext_noop(
    "Hello! Before we can answer, we need your consent to process your personal data (your name, "
    "your Telegram account and what you write to us) to handle your request. We keep it only as "
    "long as we need it and never pass it on to anyone else. You can withdraw your consent at "
    "any time by sending /stop."
)
ACCEPT = gettext_noop("Accept")
DECLINE = gettext_noop("Decline")
ACCEPTED_MARK = gettext_noop("✓ You accepted. Thank you! We will answer here.")
DECLINED_MARK = gettext_noop("✗ You declined.")
GOODBYE = gettext_noop(
    "We understand. Without your consent we can't take your request, so your messages are not "
    "passed on. Goodbye! If you change your mind, just write to us again."
)
WITHDRAWN = gettext_noop(
    "Your consent is withdrawn: we will not process your new messages. If you change your mind, write to us again."
)
ALREADY = gettext_noop("Already done.")


def required(channel: Channel) -> bool:
    return bool(channel.settings.get("consent_required"))


def version(channel: Channel) -> str:
    return str(channel.settings.get("consent_version") or 1)


def language(code: str | None) -> str:
    """The customer's language for our words: Russian for ``ru…``, otherwise English."""
    return "ru" if (code or "").lower().startswith("ru") else "en"


def say(lang: str, words: str) -> str:
    with translation.override(lang):
        return gettext(words)


def text_for(channel: Channel, lang: str) -> str:
    """The channel's own consent text, or the default one in the customer's language."""
    return (channel.settings.get("consent_text") or "").strip() or say(lang, DEFAULT_TEXT)


def is_stop(text: str) -> bool:
    command = (text or "").strip().split(" ", 1)[0].lower()
    return command == "/stop" or command.startswith("/stop@")


def pending(channel: Channel, user_id: str):
    return HeldUpdate.objects.filter(
        channel=channel, user_id=user_id, released_at__isnull=True, dropped_at__isnull=True
    ).order_by("pk")


# --- Messages ----------------------------------------------------------------------------------


def gate(channel: Channel, message: telegram.Message, inbound: InboundMessage, data: dict) -> tuple[bool, list[Call]]:
    """Whether to store a message now, and what to tell the customer.

    Not gated: the option is off, or a group chat. Accepted: the held ones are released first
    (so a release a crash cut short finishes here), then this one is stored. Otherwise it is
    held, and the question asked if it isn't pending already.
    """
    if not required(channel) or inbound.thread_id is not None:
        return True, []
    user_id, chat_id = inbound.external_contact_id, message.chat.id
    lang = language(inbound.profile.language)
    last = consents.latest(channel_id=channel.pk, external_contact_id=user_id)
    accepted = last is not None and last.decision == ConsentDecision.ACCEPTED
    if is_stop(inbound.text):
        return False, _stop(channel, user_id, chat_id, lang, accepted=accepted)
    if accepted:
        release(channel, user_id)
        return True, []
    return False, _hold(channel, user_id, chat_id, inbound.external_id or "", data, lang)


def _hold(channel: Channel, user_id: str, chat_id: int, external_id: str, data: dict, lang: str) -> list[Call]:
    row, created = HeldUpdate.objects.get_or_create(
        channel=channel, external_id=external_id, defaults={"user_id": user_id, "update": data}
    )
    if not created:  # a replay: held once, asked once
        return []
    now = timezone.now()
    if pending(channel, user_id).filter(prompted_at__gte=now - PROMPT_AGAIN_AFTER).exists():
        return []
    HeldUpdate.objects.filter(pk=row.pk).update(prompted_at=now)
    return [question(channel, chat_id, lang)]


def question(channel: Channel, chat_id: int, lang: str) -> Call:
    ver = version(channel)
    buttons = [
        {"text": say(lang, ACCEPT), "callback_data": f"{PREFIX}:accept:{ver}"[:64]},
        {"text": say(lang, DECLINE), "callback_data": f"{PREFIX}:decline:{ver}"[:64]},
    ]
    return {
        "method": "sendMessage",
        "chat_id": chat_id,
        "text": text_for(channel, lang)[:TEXT_LIMIT],
        "reply_markup": {"inline_keyboard": [buttons]},
    }


def _stop(channel: Channel, user_id: str, chat_id: int, lang: str, *, accepted: bool) -> list[Call]:
    withdrawn = None
    if accepted:
        withdrawn = actions.record_consent(
            channel=channel,
            external_contact_id=user_id,
            decision=ConsentDecision.WITHDRAWN,
            text_version=version(channel),
        )
    dropped = _drop(channel, user_id)
    if withdrawn is None and not dropped:
        return []  # nothing to withdraw: a replay, or /stop twice
    return [{"method": "sendMessage", "chat_id": chat_id, "text": say(lang, WITHDRAWN)}]


def _drop(channel: Channel, user_id: str) -> int:
    return pending(channel, user_id).update(dropped_at=timezone.now())


def release(channel: Channel, user_id: str) -> int:
    """Store the held messages as the conversation's, oldest first; how many were released."""
    from . import inbound

    released = 0
    for row in pending(channel, user_id):
        message = inbound.to_inbound(row.update)
        try:
            if message is not None:
                actions.receive_inbound(channel=channel, message=message)
        except ActionError as exc:  # a text we can't store: never retried forever
            log.warning("telegram: held message %s not stored: %s", row.external_id, exc.code)
        released += HeldUpdate.objects.filter(pk=row.pk, released_at__isnull=True).update(released_at=timezone.now())
    return released


def edit_held(channel: Channel, external_id: str, edited: dict) -> bool:
    """A held message was edited: keep its newest version (it is stored as that on acceptance)."""
    row = HeldUpdate.objects.filter(channel=channel, external_id=external_id, released_at__isnull=True).first()
    if row is None:
        return False
    HeldUpdate.objects.filter(pk=row.pk).update(update={**row.update, "message": edited})
    return True


# --- Button presses ----------------------------------------------------------------------------


def answer(query_id: str, text: str = "") -> Call:
    call: Call = {"method": "answerCallbackQuery", "callback_query_id": query_id}
    if text:
        call["text"] = text[:200]
    return call


def on_callback(channel: Channel, query: telegram.CallbackQuery) -> list[Call]:
    """A press of the question's Accept or Decline; anything else is just answered."""
    parts = (query.data or "").split(":", 2)
    message = query.message
    chat = getattr(message, "chat", None)
    if len(parts) != 3 or parts[0] != PREFIX or parts[1] not in ("accept", "decline"):
        log.info("telegram channel %s: a button press we don't know answered and ignored", channel.pk)
        return [answer(query.id)]
    if chat is None or chat.type != telegram.constants.ChatType.PRIVATE or query.from_user is None:
        log.info("telegram channel %s: a consent button outside a private chat ignored", channel.pk)
        return [answer(query.id)]
    user = query.from_user
    user_id, lang, ver = str(user.id), language(user.language_code), parts[2]
    shown = getattr(message, "text", None) or ""  # an old message may come back without its text
    if parts[1] == "accept":
        return _accept(channel, query, user, user_id, lang, ver, shown)
    return _decline(channel, query, user_id, lang, ver, shown)


def _edit(message: Any, text: str) -> list[Call]:
    if not getattr(message, "text", None):
        return []
    return [
        {
            "method": "editMessageText",
            "chat_id": message.chat.id,
            "message_id": message.message_id,
            "text": text[:TEXT_LIMIT],
        }
    ]


def _accept(channel, query, user, user_id: str, lang: str, ver: str, shown: str) -> list[Call]:
    from . import inbound

    first = pending(channel, user_id).first()
    held = inbound.to_inbound(first.update) if first is not None else None
    profile = (
        held.profile
        if held is not None
        else ContactProfile(name=user.full_name, username=user.username or "", language=user.language_code or "")
    )
    row = actions.record_consent(
        channel=channel,
        external_contact_id=user_id,
        decision=ConsentDecision.ACCEPTED,
        text_version=ver,
        text=shown or text_for(channel, lang),
        profile=profile,
    )
    release(channel, user_id)
    if row is None:  # pressed twice, or the update replayed
        return [answer(query.id, say(lang, ALREADY))]
    mark = say(lang, ACCEPTED_MARK)
    return [answer(query.id, mark), *_edit(query.message, f"{shown}\n\n{mark}")]


def _decline(channel, query, user_id: str, lang: str, ver: str, shown: str) -> list[Call]:
    last = consents.latest(channel_id=channel.pk, external_contact_id=user_id)
    if last is not None and last.decision == ConsentDecision.ACCEPTED:
        # An old question answered after accepting: that is withdrawing.
        chat_id = query.message.chat.id
        return [answer(query.id, say(lang, DECLINED_MARK)), *_stop(channel, user_id, chat_id, lang, accepted=True)]
    dropped = _drop(channel, user_id)
    recorded = actions.record_consent(
        channel=channel, external_contact_id=user_id, decision=ConsentDecision.DECLINED, text_version=ver, text=shown
    )
    if not dropped and recorded is None:
        return [answer(query.id, say(lang, ALREADY))]
    mark = say(lang, DECLINED_MARK)
    goodbye = {"method": "sendMessage", "chat_id": query.message.chat.id, "text": say(lang, GOODBYE)}
    return [answer(query.id, mark), *_edit(query.message, f"{shown}\n\n{mark}"), goodbye]
