"""A visitor's message from the widget socket, as one call of the conversation actions; and the
files a visitor uploads before sending the message that carries them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO

from helpdesk.conversations import actions
from helpdesk.conversations.inbound import InboundMessage
from helpdesk.conversations.models import Attachment, Channel, Message

from . import limits


def receive(
    channel: Channel,
    visitor_id: str,
    address: str | None,
    *,
    body: str,
    client_id: str,
    attachments: Sequence[int] = (),
) -> Message:
    """Store a visitor's message within the widget's rate limits (``RateLimited`` stores nothing).

    The widget knows its visitor by the id in their signed token and nothing more: no
    profile. ``client_id`` is the widget's id for the message, so a resent frame stores it
    once. ``attachments`` are ids of the visitor's own uploads (``upload``), bound to the
    message in its transaction: one that is not theirs, or already sent, refuses the whole
    message (``bad_attachment``) and nothing is stored.
    """
    message = InboundMessage(
        external_contact_id=visitor_id,
        text=body,
        # Scoped by visitor so one visitor's ids can never collide with another's.
        external_id=f"widget:{visitor_id}:{client_id}",
    )
    with limits.message_limits(channel, visitor_id, address) as before_new_conversation:
        return actions.receive_inbound(
            channel=channel, message=message, before_new_conversation=before_new_conversation, uploads=attachments
        )


def upload(channel: Channel, visitor_id: str, *, stream: IO[bytes], name: str, size: int | None) -> Attachment:
    """Keep a file the visitor is about to send, checked by its content (``ActionError``:
    ``file_too_large``, ``file_type_not_allowed``, ``file_empty``: nothing stored).

    The caller has counted it against the widget's upload limits (``limits.count_upload``)
    before reading it. The file is held on the visitor until the message that carries it is
    stored (``receive``).
    """
    return actions.upload_customer_attachment(channel, visitor_id, stream=stream, name=name, declared_size=size)
