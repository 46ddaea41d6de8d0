"""Plain-dict pictures of conversations and messages, shared by events, the API and pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .models import Attachment, AttachmentStatus, Contact, Conversation, Delivery, Message


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def conversation_summary(conversation: Conversation) -> dict[str, Any]:
    """What a row of the inbox list needs; also the access snapshot (company, team, assignee)."""
    return {
        "id": conversation.pk,
        "company_id": conversation.company_id,
        "channel_id": conversation.channel_id,
        "channel_kind": conversation.channel.kind,
        "channel_name": conversation.channel.name,
        "contact_id": conversation.contact_id,
        # The contact's own name, or "" (the reader adds a "Visitor #id" in their language).
        "contact_name": conversation.contact.own_name,
        "status": conversation.status,
        "assignee_id": conversation.assignee_id,
        "assignee_name": conversation.assignee.display_name if conversation.assignee_id else None,
        "team_id": conversation.team_id,
        "priority": conversation.priority,
        "snoozed_until": _iso(conversation.snoozed_until),
        "last_activity_at": _iso(conversation.last_activity_at),
        "waiting_since": _iso(conversation.waiting_since),
        "preview": conversation.last_message_preview,
        "deleted": conversation.deleted_at is not None,
    }


def message_data(message: Message, *, reveal_deleted: bool = True) -> dict[str, Any]:
    """A message as agents see it (notes included).

    A deleted message keeps its text only for readers allowed to see deleted messages
    (``reveal_deleted``); for everyone else the text is gone, not just hidden.
    """
    deleted = message.deleted_at is not None
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "kind": message.kind,
        "author_name": message.author_name,
        "author_employee_id": message.author_employee_id,
        "body": "" if deleted and not reveal_deleted else message.body,
        "created_at": _iso(message.created_at),
        "edited_at": _iso(message.edited_at),
        "deleted": deleted,
        "deleted_at": _iso(message.deleted_at),
        "deleted_by_name": message.deleted_by.display_name if message.deleted_by_id else None,
        "automatic": message.automatic,
        "while_blocked": message.while_blocked,
        "delivery": _delivery_of(message),
        # A deleted message's files are hidden with it, from everyone who can't see its text.
        "attachments": [] if deleted and not reveal_deleted else attachments_of(message),
    }


def attachments_of(message: Message) -> list[dict[str, Any]]:
    """The message's files, with employees' links (the access gate is asked when one is used).

    Lists prefetch ``attachments`` (one query for the page). A writer that has just made the
    message sets ``message.known_attachments`` (the files it bound, or ``[]``): no query then.
    """
    if message.pk is None:
        return []
    known = getattr(message, "known_attachments", None)
    files = known if known is not None else message.attachments.all()
    return [attachment_data(attachment) for attachment in files]


def attachment_data(attachment: Attachment, *, url: str | None = None) -> dict[str, Any]:
    """One file as the thread shows it; ``url`` defaults to an employee's link when it is ready."""
    from . import attachments

    ready = attachment.status == AttachmentStatus.READY
    return {
        "id": attachment.pk,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "status": attachment.status,
        "error": attachment.error,
        "image": attachment.is_image,
        "url": (url or attachments.link(attachment)) if ready else None,
    }


def _delivery_of(message: Message) -> dict[str, Any] | None:
    """The message's delivery if it was loaded with it (``select_related("delivery")``, or just
    written); never a query per message. Messages without one (the widget's, notes) show None."""
    delivery = Message.delivery.related.get_cached_value(message, default=None)
    return delivery_data(delivery) if delivery is not None else None


def delivery_data(delivery: Delivery) -> dict[str, Any]:
    """How far an outbound message got: what the thread shows beside it, and ``delivery.updated`` carries."""
    return {
        "id": delivery.pk,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": _iso(delivery.next_attempt_at),
        # The provider's words; adapters never put a secret in them.
        "last_error": delivery.last_error,
        "sent_at": _iso(delivery.sent_at),
    }


def contact_card(contact: Contact) -> dict[str, Any]:
    """A contact as the profile panel shows it; ``contact.updated`` events carry it.

    A block that has run out is no block: it reads as not blocked, with no details.
    """
    blocked = contact.is_blocked()
    return {
        "id": contact.pk,
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "attributes": contact.attributes,
        "blocked": blocked,
        "blocked_until": _iso(contact.blocked_until) if blocked else None,
        "blocked_reason": contact.blocked_reason if blocked else "",
        "blocked_by_name": contact.blocked_by.display_name if blocked and contact.blocked_by_id else None,
    }


def preview_of(body: str, files: Sequence[str] = ()) -> str:
    """The list's one line for a message: its text, or the names of its files when it has none."""
    flat = " ".join(body.split()) or ("📎 " + ", ".join(files) if files else "")
    return flat if len(flat) <= 140 else flat[:139] + "…"
