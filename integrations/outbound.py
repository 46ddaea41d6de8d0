"""Where a committed event leaves Smartchat for a customer-facing channel.

The channel's adapter says how: the widget pushes to the visitor's socket (``socket_sends``);
channels with an outside API get a Celery delivery task. Which adapter is asked depends on
the conversation's channel, never on a comparison here. Internal notes and system lines never
reach any adapter.
"""

from __future__ import annotations

from typing import Any

from helpdesk.conversations.adapters import adapter_for
from helpdesk.conversations.models import Conversation, MessageKind

# What each event means for the customer: a message to show, or one to take back.
CUSTOMER_EFFECT = {"message.created": "show", "message.restored": "show", "message.deleted": "remove"}


def customer_effect(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """("show" or "remove", the message) when the event changes what the customer sees; else None."""
    if event["type"] not in CUSTOMER_EFFECT:
        return None
    message = event["payload"]["message"]
    return (CUSTOMER_EFFECT[event["type"]], message) if message["kind"] == MessageKind.MESSAGE else None


def _for_the_customer(event: dict[str, Any]) -> bool:
    """An event about a note or a system line stays inside: no adapter ever sees it."""
    message = event["payload"].get("message")
    return message is None or message.get("kind") == MessageKind.MESSAGE


def socket_sends(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Channel-layer messages for customer-side sockets, sent with the inbox fan-out."""
    if not _for_the_customer(event):
        return []
    return adapter_for(event["payload"]["conversation"]["channel_kind"]).socket_sends(event)


def typing_sends(conversation: Conversation, *, name: str, typing: bool) -> list[tuple[str, dict[str, Any]]]:
    """An agent typing a reply, for channels that can show it; not stored, not an event."""
    return adapter_for(conversation.channel.kind).typing_sends(conversation, name=name, typing=typing)


def enqueue(event: dict[str, Any]) -> None:
    """Queue delivery for channels that talk to an outside API. None exist yet."""
    return None
