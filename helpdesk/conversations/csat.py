"""The satisfaction survey (CSAT), as every channel shares it: is it on, what it asks, is it open.

A channel's settings say whether its customers are asked (``csat``) and may give the question
(``csat_question``). When such a conversation is resolved the writer records a pending
``Rating`` (``actions.csat``); the widget shows the survey inline, every other channel gets
:func:`survey_text` as an automatic message and may answer with a lone digit
(:func:`digit_score`). The rules of who may rate what, and when, live here once (docs/csat.md).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import access
from .models import Channel, Conversation, Rating, Status

# Enough to see how a customer feels; older ones stay in the conversations' history.
RATINGS_SHOWN_MAX = 20
_DIGIT = re.compile(r"\s*([1-5])\s*[.!]?\s*")


def enabled(channel: Channel) -> bool:
    """Does this channel ask its customers to rate a resolved conversation?"""
    return bool((channel.settings or {}).get("csat"))


def window() -> timedelta:
    return timedelta(hours=settings.CSAT_RATING_WINDOW_HOURS)


def closes_at(rating: Rating) -> datetime:
    return rating.created_at + window()


def customer_language(conversation: Conversation) -> str:
    """The language the customer is spoken to in: their contact's, else the site's default."""
    wanted = str((conversation.contact.attributes or {}).get("language") or "").strip()
    try:
        return translation.get_supported_language_variant(wanted.lower()) if wanted else settings.LANGUAGE_CODE
    except LookupError:
        return settings.LANGUAGE_CODE


def custom_question(channel: Channel) -> str:
    """The channel's own question, or "" for the default one (which each reader translates)."""
    return str((channel.settings or {}).get("csat_question") or "").strip()


def question_for(conversation: Conversation, language: str | None = None) -> str:
    """The survey's question for this conversation, in ``language`` (the customer's by default)."""
    own = custom_question(conversation.channel)
    if own:
        return own
    with translation.override(language or customer_language(conversation)):
        return _("How would you rate our help with this conversation?")


def survey_text(conversation: Conversation, language: str | None = None) -> str:
    """The survey as one text message, for channels that can't show it inline."""
    language = language or customer_language(conversation)
    question = question_for(conversation, language)
    with translation.override(language):
        how = _("Reply with one number from 1 (bad) to 5 (excellent).")
    return f"{question}\n{how}"


def answer_text(conversation: Conversation, code: str, language: str | None = None) -> str:
    """What the customer is told after a lone-digit answer: thanks, or why it was not taken."""
    with translation.override(language or customer_language(conversation)):
        return refusal_message(code) if code != "rated" else _("Thank you for your rating!")


def refusal_message(code: str) -> str:
    """A refused rating, said politely (in the active language)."""
    messages = {
        "already_rated": _("You have already rated this conversation. Thank you!"),
        "rating_closed": _("This conversation can no longer be rated."),
        "not_resolved": _("This conversation is open again, so it can't be rated now."),
        "not_rateable": _("There is nothing to rate here."),
    }
    return messages.get(code, messages["not_rateable"])


def digit_score(text: str) -> int | None:
    """A reply that is just a digit from 1 to 5 ("4", " 5. "): that score; anything else None."""
    match = _DIGIT.fullmatch(text or "")
    return int(match.group(1)) if match else None


def current_survey(conversation: Conversation) -> Rating | None:
    """The survey of the conversation's current resolution, answered or not; None if none was offered."""
    if conversation.resolutions == 0:
        return None
    return Rating.objects.filter(conversation=conversation, resolution=conversation.resolutions).first()


def why_closed(conversation: Conversation, survey: Rating | None, *, now: datetime | None = None) -> str | None:
    """None if ``survey`` may be answered now; otherwise the refusal's code."""
    if survey is None:
        return "not_rateable"
    if survey.rated:
        return "already_rated"
    if survey.resolution != conversation.resolutions:
        return "rating_closed"  # resolved again since: only the newest resolution may be rated
    if conversation.status != Status.RESOLVED:
        return "not_resolved"
    if (now or timezone.now()) >= closes_at(survey):
        return "rating_closed"
    return None


def open_survey(conversation: Conversation | None) -> Rating | None:
    """The survey the customer may answer now, or None."""
    if conversation is None or conversation.status != Status.RESOLVED or conversation.deleted_at is not None:
        return None
    survey = current_survey(conversation)
    return survey if survey is not None and why_closed(conversation, survey) is None else None


def survey_data(conversation: Conversation, survey: Rating) -> dict[str, Any]:
    """The open survey as a customer-side client shows it (the widget).

    ``question`` is the channel's own text, or "" for the default (the widget has it in its
    own language).
    """
    return {
        "resolution": survey.resolution,
        "question": custom_question(conversation.channel),
        "closes_at": closes_at(survey).isoformat(),
    }


def rating_data(rating: Rating) -> dict[str, Any]:
    """A given rating as agents see it (the conversation's and the contact's API, the profile)."""
    return {
        "id": rating.pk,
        "conversation_id": rating.conversation_id,
        "resolution": rating.resolution,
        "rating": rating.score,
        "comment": rating.comment,
        "agent_id": rating.agent_id,
        "team_id": rating.team_id,
        "channel_id": rating.channel_id,
        "rated_at": rating.rated_at.isoformat() if rating.rated_at else None,
    }


def contact_ratings(viewer, contact_id: int) -> list[dict[str, Any]]:
    """The contact's ratings in conversations the viewer may see, newest first."""
    visible = access.visible_conversations(viewer).filter(contact_id=contact_id).values("pk")
    rows = Rating.objects.filter(contact_id=contact_id, score__isnull=False, conversation__in=visible)
    return [rating_data(r) for r in rows.order_by("-rated_at", "-pk")[:RATINGS_SHOWN_MAX]]


def conversation_ratings(conversation: Conversation) -> list[dict[str, Any]]:
    """The ratings given to the conversation's resolutions, oldest first (the caller checked access)."""
    rows = Rating.objects.filter(conversation=conversation, score__isnull=False).order_by("resolution")
    return [rating_data(r) for r in rows]
