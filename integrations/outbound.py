"""Where a committed event leaves Smartchat for a customer-facing channel.

Each channel adapter says how its outbound messages travel: the widget pushes to the
visitor's socket; on channels with an outside API each customer-visible message has a
``Delivery`` row (written with it) that a Celery task sends; :func:`enqueue` queues that task
once the event saying so has committed. Internal notes never reach this point for any channel.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from helpdesk.conversations.models import ChannelKind, Conversation, DeliveryStatus, MessageKind
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
    """Queue the worker for what a committed event says is waiting to leave.

    A new reply (``message.created`` carrying a queued delivery), a retry scheduled or asked
    for (``delivery.updated``, queued, not before its time), and, once a delivery stops holding
    its conversation back (sent or failed), the next one waiting behind it. Whatever is lost
    here (a crash before this ran) the sweeper queues again.
    """
    from helpdesk.conversations import tasks

    if event["type"] == "message.created":
        delivery = event["payload"]["message"].get("delivery")
    elif event["type"] == "delivery.updated":
        delivery = event["payload"]["delivery"]
    else:
        return
    if not delivery:
        return
    if delivery["status"] == DeliveryStatus.QUEUED:
        tasks.queue_delivery(delivery["id"], at=datetime.fromisoformat(delivery["next_attempt_at"]))
    elif delivery["status"] in (DeliveryStatus.SENT, DeliveryStatus.FAILED):
        tasks.queue_next_delivery(event["conversation_id"])
