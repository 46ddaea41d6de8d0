"""The satisfaction survey: offered when a conversation is resolved, answered once (docs/csat.md)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee
from helpdesk.errors import ActionError
from helpdesk.events import log as events

from .. import csat
from ..adapters import adapter_for
from ..models import RATING_COMMENT_MAX_CHARS, Contact, Conversation, Message, Rating
from ._common import _check_storable, _locked
from .delivery import _say_automatically


def _count_resolution(conversation: Conversation) -> int:
    """The conversation is being resolved (its row locked by the caller): count it, return which
    one. The caller saves ``resolutions`` with the status."""
    conversation.resolutions += 1
    return conversation.resolutions


def _offer_survey(conversation: Conversation, *, by: Employee | None) -> Rating | None:
    """Ask the customer to rate this resolution, if the channel's survey is on.

    Inside the resolve's transaction, after ``_count_resolution``. The widget shows the survey
    itself (``Adapter.inline_survey``: the ``conversation.resolved`` event says ``survey``);
    every other channel gets it as an automatic message that leaves like any reply.
    """
    if not csat.enabled(conversation.channel) or conversation.deleted_at is not None:
        return None
    survey, created = Rating.objects.get_or_create(
        conversation=conversation,
        resolution=conversation.resolutions,
        defaults={
            "contact_id": conversation.contact_id,
            "channel_id": conversation.channel_id,
            "team_id": conversation.team_id,
            "agent_id": conversation.assignee_id,
            "resolved_by": by,
        },
    )
    if created and not _inline(conversation):
        _say_to_customer(conversation, csat.survey_text(conversation))
    return survey


def _inline(conversation: Conversation) -> bool:
    try:
        return adapter_for(conversation.channel.kind).inline_survey
    except LookupError:
        return False


def _say_to_customer(conversation: Conversation, body: str) -> Message:
    """An automatic message to the customer in their channel; it leaves like any reply."""
    return _say_automatically(conversation, body)


def clean_score(score: Any) -> int:
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ActionError(_("A rating is a whole number from 1 to 5."), code="bad_rating", field="rating")
    return score


def clean_comment(comment: Any) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise ActionError(_("The comment must be text."), code="bad_comment", field="comment")
    comment = _check_storable(comment.strip(), field="comment")
    if len(comment) > RATING_COMMENT_MAX_CHARS:
        raise ActionError(
            _("A comment can be at most %(limit)s characters long.") % {"limit": RATING_COMMENT_MAX_CHARS},
            code="comment_too_long",
            field="comment",
        )
    return comment


@transaction.atomic(durable=True)
def rate_conversation(
    conversation: Conversation, *, contact: Contact, score: Any, comment: Any = "", resolution: Any = None
) -> Rating:
    """The customer rates the conversation's resolution (the current one, or ``resolution`` if given).

    Once per resolution, while the conversation stays resolved, within
    ``CSAT_RATING_WINDOW_HOURS`` of the resolve; anything else is an ``ActionError`` whose
    message says so politely (``already_rated``, ``not_resolved``, ``rating_closed``,
    ``not_rateable``) and changes nothing. Records ``conversation.rated``.
    """
    score, comment = clean_score(score), clean_comment(comment)
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int)):
        raise ActionError(_("resolution must be a number."), code="bad_rating", field="resolution")
    conversation = _locked(conversation)
    if contact.pk != conversation.contact_id:
        raise ActionError(csat.refusal_message("not_rateable"), code="not_rateable")
    if resolution is None:
        survey = csat.current_survey(conversation)
    else:
        survey = Rating.objects.filter(conversation=conversation, resolution=resolution).first()
    code = csat.why_closed(conversation, survey)
    if code is not None:
        raise ActionError(csat.refusal_message(code), code=code)
    return _rate(conversation, survey, score=score, comment=comment)


def _rate(conversation: Conversation, survey: Rating, *, score: int, comment: str) -> Rating:
    """Give the open ``survey`` its score (the conversation locked, the checks done)."""
    survey.score, survey.comment, survey.rated_at = score, comment, timezone.now()
    survey.save(update_fields=["score", "comment", "rated_at"])
    events.record(
        conversation,
        "conversation.rated",
        rating=score,
        comment_given=bool(comment),
        comment=comment,
        resolution=survey.resolution,
        rating_id=survey.pk,
        agent_id=survey.agent_id,
        team_id=survey.team_id,
    )
    return survey


def _answer_by_digit(conversation: Conversation, survey: Rating, *, score: int, inbound: Message) -> None:
    """A lone digit arrived for the survey of a resolved conversation (``receive_message``):
    rate, or say politely why not; then tell the customer in their channel."""
    code = csat.why_closed(conversation, survey, now=inbound.created_at)
    if code is None:
        _rate(conversation, survey, score=score, comment="")
    _say_to_customer(conversation, csat.answer_text(conversation, code or "rated"))
