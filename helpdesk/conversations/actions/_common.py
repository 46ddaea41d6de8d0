"""What the conversation writer's modules share: the sentinel, wake reasons, text checks,
the row lock and the access snapshot events carry."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from helpdesk.errors import ActionError

from ..models import Conversation

_UNSET: Any = object()


class WakeReason:
    """Why a snoozed conversation woke (the ``reason`` of ``conversation.woken``)."""

    TIME = "time"  # its snooze time came (the scheduler)
    CUSTOMER = "customer"  # the customer wrote
    TEAMMATE = "teammate"  # someone other than the assignee replied or added a note
    MANUAL = "manual"  # someone unsnoozed it by hand


# What a text column can't hold: PostgreSQL refuses NUL, and a lone surrogate (a JSON
# "\ud800" decodes to one) can't be encoded as UTF-8 at all. Either would fail the query.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _check_storable(text: str, *, field: str | None = None) -> str:
    """Refuse text the database can't hold, before it reaches a query."""
    if _UNSTORABLE.search(text):
        raise ActionError(
            _("The text contains characters that can't be stored (a NUL byte or a broken character)."),
            code="bad_characters",
            field=field,
        )
    return text


def _clean_body(body: str, *, may_be_empty: bool = False) -> str:
    """The message's text, stripped; empty only where the message carries files (``may_be_empty``)."""
    body = _check_storable((body or "").strip())
    if not body and not may_be_empty:
        raise ActionError(_("A message can't be empty."), code="empty")
    if len(body) > settings.MESSAGE_MAX_CHARS:
        raise ActionError(
            _("A message can be at most %(limit)s characters long.") % {"limit": settings.MESSAGE_MAX_CHARS},
            code="too_long",
        )
    return body


def _locked(conversation: Conversation) -> Conversation:
    """Re-read the conversation under a row lock so concurrent actions serialise."""
    locked = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "channel", "assignee", "team")
        .get(pk=conversation.pk)
    )
    conversation.__dict__.update(locked.__dict__)
    return conversation


def _access_snapshot(conversation: Conversation) -> dict[str, Any]:
    return {"team_id": conversation.team_id, "assignee_id": conversation.assignee_id, "status": conversation.status}
