"""A visitor's message from the widget socket, as one call of the conversation actions; and the
files a visitor uploads before sending the message that carries them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

from django.db.models import OuterRef, Subquery
from django.utils.translation import gettext as _

from helpdesk.conversations import actions, csat
from helpdesk.conversations.inbound import InboundMessage, SenderHint
from helpdesk.conversations.models import Attachment, Channel, ContactIdentity, Conversation, Message, Rating

from . import limits


def receive(
    channel: Channel,
    visitor_id: str,
    address: str | None,
    *,
    body: str,
    client_id: str,
    attachments: Sequence[int] = (),
    hint: SenderHint | None = None,
) -> Message:
    """Store a visitor's message within the widget's rate limits (``RateLimited`` stores nothing).

    The widget knows its visitor by the id in their signed token and nothing more: no
    profile. ``client_id`` is the widget's id for the message, so a resent frame stores it
    once. ``attachments`` are ids of the visitor's own uploads (``upload``), bound to the
    message in its transaction: one that is not theirs, or already sent, refuses the whole
    message (``bad_attachment``) and nothing is stored. ``hint``: what the socket knows of its
    visitor (``sender_hint``, then the conversation of the last message it stored).
    """
    message = InboundMessage(
        external_contact_id=visitor_id,
        text=body,
        # Scoped by visitor so one visitor's ids can never collide with another's.
        external_id=f"widget:{visitor_id}:{client_id}",
    )
    with limits.message_limits(channel, visitor_id, address) as before_new_conversation:
        return actions.receive_inbound(
            channel=channel,
            message=message,
            before_new_conversation=before_new_conversation,
            uploads=attachments,
            hint=hint,
        )


def sender_hint(channel: Channel, visitor_id: str) -> SenderHint:
    """What a socket keeps of its visitor (one query): their latest conversation, or that they
    have never written (no contact yet), so their messages skip the lookups (``SenderHint``)."""
    latest = (
        Conversation.objects.filter(channel=channel, contact_id=OuterRef("contact_id"), deleted_at__isnull=True)
        .order_by("-pk")
        .values("pk")[:1]
    )
    row = (
        ContactIdentity.objects.filter(channel=channel, external_id=visitor_id)
        .annotate(latest=Subquery(latest))
        .values_list("pk", "latest")
        .first()
    )
    if row is None:
        return SenderHint(new_sender=True)
    return SenderHint(conversation_id=row[1])


def upload(channel: Channel, visitor_id: str, *, stream: IO[bytes], name: str, size: int | None) -> Attachment:
    """Keep a file the visitor is about to send, checked by its content (``ActionError``:
    ``file_too_large``, ``file_type_not_allowed``, ``file_empty``: nothing stored).

    The caller has counted it against the widget's upload limits (``limits.count_upload``)
    before reading it. The file is held on the visitor until the message that carries it is
    stored (``receive``).
    """
    return actions.upload_customer_attachment(channel, visitor_id, stream=stream, name=name, declared_size=size)


def _latest_conversation(channel: Channel, visitor_id: str) -> Conversation | None:
    identity = ContactIdentity.objects.filter(channel=channel, external_id=visitor_id).first()
    if identity is None:
        return None
    return (
        Conversation.objects.select_related("channel", "contact")
        .filter(channel=channel, contact_id=identity.contact_id, deleted_at__isnull=True)
        .order_by("-pk")
        .first()
    )


def rate(channel: Channel, visitor_id: str, *, rating: Any, comment: Any = "", resolution: Any = None) -> Rating:
    """The visitor rates their latest conversation's resolution (``actions.rate_conversation``):
    once, while it stays resolved, within the window; refusals are ``ActionError``s."""
    conversation = _latest_conversation(channel, visitor_id)
    if conversation is None:
        raise actions.ActionError(_("There is nothing to rate here."), code="not_rateable")
    return actions.rate_conversation(
        conversation, contact=conversation.contact, score=rating, comment=comment, resolution=resolution
    )


def open_survey(channel: Channel, visitor_id: str) -> dict[str, Any] | None:
    """The survey the visitor may answer now (the session shows it after a reload), or None."""
    conversation = _latest_conversation(channel, visitor_id)
    survey = csat.open_survey(conversation)
    return csat.survey_data(conversation, survey) if survey is not None else None
