"""Deleting and restoring messages and conversations: nothing is destroyed."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError
from helpdesk.events import audit
from helpdesk.events import log as events

from .. import access
from ..models import Conversation, Message, MessageKind
from ..snapshots import message_data, preview_of
from ._common import _access_snapshot, _locked
from .delivery import cancel_unsent
from .handout import _hand_out_after


def _audit_message(action: str, message: Message, *, by: Employee) -> None:
    """A deleted or restored message in the audit log: by id, conversation and author, never its text.

    Whoever may read the audit log is not thereby allowed to read the conversation, nor
    deleted text: the message keeps its text for those who may see it. A customer is named
    by contact id only (their name is contact data, shown only to those who see the contact).
    """
    author: dict[str, Any] = {}
    if message.author_employee_id:
        author["author"] = message.author_employee.display_name
    elif message.author_contact_id:
        author["contact"] = message.author_contact_id
    audit.record(
        action,
        company=message.conversation.company_id,
        actor=by,
        obj=message,
        object_repr=f"#{message.conversation_id}",
        after={"conversation": message.conversation_id, **author},
    )


def _refresh_preview(conversation: Conversation) -> None:
    """The list preview shows the newest message that is not deleted (customer's or reply).

    Without this a deleted message's text would live on in the list, and in the snapshot
    every later event carries, for people who may not see deleted messages.
    """
    body = (
        conversation.messages.filter(kind=MessageKind.MESSAGE, deleted_at__isnull=True)
        .order_by("-pk")
        .values_list("body", flat=True)
        .first()
    )
    preview = preview_of(body or "")
    if preview != conversation.last_message_preview:
        conversation.last_message_preview = preview
        conversation.save(update_fields=["last_message_preview", "updated_at"])


@transaction.atomic(durable=True)
def delete_message(message: Message, *, by: Employee) -> Message:
    """Mark a message deleted (who, when). Admins still see it and can restore it."""
    access.require(by, Perm.DELETE_MESSAGES)
    conversation = _locked(message.conversation)
    # With its delivery (if any), so the event's message shows how far it got, as the thread does.
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("delivery")
        .get(pk=message.pk, conversation=conversation)
    )
    if message.kind == MessageKind.SYSTEM:
        raise ActionError(_("System messages can't be deleted."), code="system_message")
    if message.deleted_at:
        return message
    message.deleted_at, message.deleted_by = timezone.now(), by
    message.save(update_fields=["deleted_at", "deleted_by"])
    _refresh_preview(conversation)
    message.conversation = conversation
    # A reply not yet sent never will be: its delivery fails now, saying why.
    cancelled = cancel_unsent(message, conversation, by=by)
    if cancelled is not None:
        message.delivery = cancelled
    # The event carries no text: sockets of people who may not see deleted text get none.
    events.record(conversation, "message.deleted", actor=by, message=message_data(message, reveal_deleted=False))
    _audit_message("message.deleted", message, by=by)
    return message


@transaction.atomic(durable=True)
def restore_message(message: Message, *, by: Employee) -> Message:
    access.require(by, Perm.RESTORE)
    conversation = _locked(message.conversation)
    # With its delivery (if any), so the event's message shows how far it got, as the thread does.
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("delivery")
        .get(pk=message.pk, conversation=conversation)
    )
    if not message.deleted_at:
        return message
    message.deleted_at, message.deleted_by = None, None
    message.save(update_fields=["deleted_at", "deleted_by"])
    _refresh_preview(conversation)
    message.conversation = conversation
    events.record(conversation, "message.restored", actor=by, message=message_data(message))
    _audit_message("message.restored", message, by=by)
    return message


@transaction.atomic(durable=True)
def delete_conversation(conversation: Conversation, *, by: Employee) -> Conversation:
    """Move a conversation to the Trash: it leaves every list live; admins can restore it."""
    access.require(by, Perm.DELETE_CONVERSATIONS)
    conversation = _locked(conversation)
    if conversation.deleted_at:
        return conversation
    previous = {**_access_snapshot(conversation), "deleted": False}
    conversation.deleted_at, conversation.deleted_by = timezone.now(), by
    conversation.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    events.record(conversation, "conversation.deleted", actor=by, previous=previous)
    audit.record("conversation.deleted", company=conversation.company_id, actor=by, obj=conversation)
    _hand_out_after(conversation, previous)
    return conversation


@transaction.atomic(durable=True)
def restore_conversation(conversation: Conversation, *, by: Employee) -> Conversation:
    access.require(by, Perm.RESTORE)
    conversation = _locked(conversation)
    if not conversation.deleted_at:
        return conversation
    # While it was in the Trash the customer may have opened a new conversation on the same
    # channel; both then stay, and the customer's next message goes to the newest one.
    previous = {**_access_snapshot(conversation), "deleted": True}
    conversation.deleted_at, conversation.deleted_by = None, None
    conversation.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    events.record(conversation, "conversation.restored", actor=by)
    audit.record("conversation.restored", company=conversation.company_id, actor=by, obj=conversation)
    _hand_out_after(conversation, previous)
    return conversation
