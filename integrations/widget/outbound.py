"""Widget delivery: an agent's reply goes to the visitor's open sockets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from helpdesk.conversations import csat
from helpdesk.conversations.models import Channel, ContactIdentity

from .visitors import public_message, visitor_group


def _group(conversation: dict[str, Any]) -> str:
    external_id = (
        ContactIdentity.objects.filter(channel_id=conversation["channel_id"], contact_id=conversation["contact_id"])
        .values_list("external_id", flat=True)
        .first()
    )
    return visitor_group(conversation["channel_id"], external_id or "none")


def visitor_send(conversation: dict[str, Any], message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A message for the visitor's chat; its files carry links made for that visitor."""
    shown = public_message(message, contact_id=conversation["contact_id"])
    return _group(conversation), {"type": "visitor.message", "message": shown}


def visitor_remove(conversation: dict[str, Any], message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A deleted message disappears from the visitor's chat too."""
    return _group(conversation), {"type": "visitor.removed", "message_id": message["id"]}


def visitor_typing(conversation: dict[str, Any], *, name: str, typing: bool) -> tuple[str, dict[str, Any]]:
    """An agent is typing a reply: the visitor sees "<name> is typing…" (names only, no ids)."""
    return _group(conversation), {"type": "visitor.typing", "name": name, "typing": typing}


def visitor_survey(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The survey, inline in the visitor's chat: offered on resolve (``survey``), gone on reopen (None)."""
    conversation = event["payload"]["conversation"]
    survey = None
    if event["type"] == "conversation.resolved":
        channel = Channel.objects.get(pk=conversation["channel_id"])
        closes_at = datetime.fromisoformat(event["created_at"]) + csat.window()
        survey = {
            "resolution": event["payload"]["resolution"],
            "question": csat.custom_question(channel),
            "closes_at": closes_at.isoformat(),
        }
    return _group(conversation), {"type": "visitor.survey", "survey": survey}


def visitor_rated(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The visitor's rating was taken: every open tab of theirs thanks them."""
    payload = event["payload"]
    return _group(payload["conversation"]), {
        "type": "visitor.rated",
        "resolution": payload["resolution"],
        "rating": payload["rating"],
    }
