"""Where a committed event leaves Smartchat for a customer-facing channel.

Each channel adapter says how its outbound messages travel: the widget pushes to the
visitor's socket; channels with an outside API (later) get a Celery delivery task.
Internal notes never reach this point for any channel.
"""

from __future__ import annotations

from typing import Any

from helpdesk.conversations.models import ChannelKind, MessageKind

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


def enqueue(event: dict[str, Any]) -> None:
    """Queue delivery for channels that talk to an outside API. None exist yet."""
    return None
