"""A customer edited a message in their channel (Telegram ``edited_message``, VK ``message_edit``)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from helpdesk.events import log as events

from ..models import Channel, Direction, Message, MessageKind, MessageRevision
from ..snapshots import message_data, preview_of
from ._common import _check_storable, _clean_body, _locked

log = logging.getLogger(__name__)


@transaction.atomic(durable=True)
def edit_inbound(*, channel: Channel, external_id: str, text: str) -> Message | None:
    """Replace a stored customer message's text with its edited version; None if we never stored it.

    The text it had is kept as a ``MessageRevision`` (nothing is destroyed), the message gets
    ``edited_at``, and a ``message.edited`` event tells the inboxes. Idempotent: the same text
    again (a replayed update) changes nothing. A message kept while its contact was blocked, or
    deleted since, changes quietly: nobody was told of it, nobody is told now. ``text`` is the
    whole new body (with the attachment lines, as ``InboundMessage.body`` gives it); an empty or
    unstorable one raises ``ActionError``.
    """
    _check_storable(external_id, field="external_id")
    found = Message.objects.filter(channel=channel, external_id=external_id, direction=Direction.INBOUND).first()
    if found is None:
        log.info("channel %s: an edit of message %.80r, which was never stored, ignored", channel.pk, external_id)
        return None
    body = _clean_body(text)
    conversation = _locked(found.conversation)
    message = (
        Message.objects.select_for_update(of=("self",))
        .select_related("author_contact", "author_employee", "deleted_by")
        .get(pk=found.pk)
    )
    if message.body == body:
        return message
    now = timezone.now()
    MessageRevision.objects.create(message=message, body=message.body, replaced_at=now)
    message.body, message.edited_at = body, now
    message.save(update_fields=["body", "edited_at"])
    if message.while_blocked or message.deleted_at is not None:
        return message
    newest = (
        conversation.messages.filter(kind=MessageKind.MESSAGE, deleted_at__isnull=True)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )
    if newest == message.pk:
        conversation.last_message_preview = preview_of(body)
        conversation.save(update_fields=["last_message_preview", "updated_at"])
    message.conversation = conversation
    events.record(conversation, "message.edited", message=message_data(message))
    return message
