"""Where a committed event leaves Smartchat for a customer-facing channel.

Each channel adapter says how its outbound messages travel: the widget pushes to the
visitor's socket; channels with an outside API (later) get a Celery delivery task.
Internal notes never reach this point for any channel.
"""

from __future__ import annotations

from typing import Any

from helpdesk.conversations.models import ChannelKind, Conversation, MessageKind
from helpdesk.conversations.snapshots import conversation_summary

# What each event means for the customer: a message to show, or one to take back.
CUSTOMER_EFFECT = {"message.created": "show", "message.restored": "show", "message.deleted": "remove"}


def _customer_visible_message(event: dict[str, Any]) -> dict[str, Any] | None:
    if event["type"] not in CUSTOMER_EFFECT:
        return None
    message = event["payload"]["message"]
    return message if message["kind"] == MessageKind.MESSAGE else None


def socket_sends(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Channel-layer messages for customer-side sockets (the widget), sent with the inbox fan-out."""
    message = _customer_visible_message(event)
    conversation = event["payload"]["conversation"]
    if message is None or conversation["channel_kind"] != ChannelKind.WIDGET:
        return []
    from integrations.widget import outbound as widget

    if CUSTOMER_EFFECT[event["type"]] == "remove":
        return [widget.visitor_remove(conversation, message)]
    return [widget.visitor_send(conversation, message)]


def typing_sends(conversation: Conversation, *, name: str, typing: bool) -> list[tuple[str, dict[str, Any]]]:
    """An agent typing a reply, for channels that can show it (the widget); not stored, not an event."""
    if conversation.channel.kind != ChannelKind.WIDGET:
        return []
    from integrations.widget import outbound as widget

    return [widget.visitor_typing(conversation_summary(conversation), name=name, typing=typing)]


def enqueue(event: dict[str, Any]) -> None:
    """Queue delivery for channels that talk to an outside API. None exist yet."""
    return None
