"""A visitor's message from the widget socket, as one call of the conversation actions."""

from __future__ import annotations

from helpdesk.conversations import actions
from helpdesk.conversations.inbound import InboundMessage
from helpdesk.conversations.models import Channel, Message

from . import limits


def receive(channel: Channel, visitor_id: str, address: str | None, *, body: str, client_id: str) -> Message:
    """Store a visitor's message within the widget's rate limits (``RateLimited`` stores nothing).

    The widget knows its visitor by the id in their signed token and nothing more: no
    profile, no files yet. ``client_id`` is the widget's id for the message, so a resent
    frame stores it once.
    """
    message = InboundMessage(
        external_contact_id=visitor_id,
        text=body,
        # Scoped by visitor so one visitor's ids can never collide with another's.
        external_id=f"widget:{visitor_id}:{client_id}",
    )
    with limits.message_limits(channel, visitor_id, address) as before_new_conversation:
        return actions.receive_inbound(
            channel=channel, message=message, before_new_conversation=before_new_conversation
        )
