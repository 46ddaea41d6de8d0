"""Where a committed event leaves Smartchat for a customer-facing channel.

The channel's adapter says how: the widget pushes to the visitor's socket (``socket_sends``);
on channels with an outside API each customer-visible message has a ``Delivery`` row (written
with it) that a Celery task sends; :func:`enqueue` queues that task once the event saying so
has committed. Which adapter is asked depends on the conversation's channel, never on a
comparison here. Internal notes and system lines never reach any adapter.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from helpdesk.conversations.adapters import adapter_for
from helpdesk.conversations.models import Conversation, DeliveryStatus, MessageKind

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
