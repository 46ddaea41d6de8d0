"""Files: an upload kept for a conversation, and binding uploads to the message they came with.

An upload is checked while it is read: never more than ``ATTACHMENT_MAX_BYTES`` is read, and
its type is judged by its first bytes (``attachments.sniff``), not its name. It is stored
with no message until its sender sends one (``bind_uploads``): an agent's reply or a
visitor's message. A customer's upload (``upload_customer_attachment``: the website
widget's visitor) is held on the customer, with no conversation, until their message is
stored: the message decides the conversation. Nothing here is ever deleted.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import IO

from django.core.files.base import ContentFile
from django.db.models import Q
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError

from .. import access
from .. import attachments as rules
from ..models import Attachment, AttachmentStatus, Channel, Contact, Conversation, Message
from ._common import _check_storable

CHUNK = 64 * 1024


def read_limited(stream: IO[bytes], name: str, *, declared_size: int | None = None) -> bytes:
    """The whole file, refused (``file_too_large``) as soon as it passes the size limit."""
    rules.check_size(declared_size, name)
    limit = rules.settings.ATTACHMENT_MAX_BYTES
    buffer = io.BytesIO()
    while chunk := stream.read(CHUNK):
        buffer.write(chunk)
        if buffer.tell() > limit:
            rules.check_size(buffer.tell(), name)
    return buffer.getvalue()


def checked_file(data: bytes, name: str) -> tuple[str, str]:
    """(clean name, content type) of a file that may be kept; ``ActionError`` if not."""
    name = rules.clean_name(name)
    if not data:
        raise ActionError(_("“%(name)s” is empty.") % {"name": name}, code="file_empty")
    rules.check_size(len(data), name)
    content_type = rules.sniff(data[: rules.SNIFF_BYTES], name)
    rules.check_type(content_type, name)
    return name, content_type


def upload_attachment(
    conversation: Conversation | None,
    *,
    stream: IO[bytes],
    name: str,
    declared_size: int | None = None,
    by_employee: Employee | None = None,
    by_contact: Contact | None = None,
) -> Attachment:
    """Keep a file for ``conversation`` before its message is sent; checked, never over a limit.

    The caller has already decided that the uploader may write to this conversation (the API's
    access gate for an agent, the visitor's token for a visitor). One row, no event: nobody
    sees an upload until the message that carries it is sent. With no ``conversation`` the
    upload is held on ``by_contact`` (required then) until their message binds it.
    """
    if by_employee is not None and not (by_employee.can(Perm.REPLY) or by_employee.can(Perm.ADD_NOTES)):
        # Files go out with a reply or a note: whoever may send neither may not upload.
        access.require(by_employee, Perm.REPLY)
    if conversation is None and by_contact is None:
        raise ValueError("an upload with no conversation is held on the contact who made it")
    data = read_limited(stream, name, declared_size=declared_size)
    name, content_type = checked_file(data, name)
    attachment = Attachment(
        company_id=conversation.company_id if conversation is not None else by_contact.company_id,
        conversation=conversation,
        name=name,
        content_type=content_type,
        size=len(data),
        status=AttachmentStatus.READY,
        uploaded_by_employee=by_employee,
        uploaded_by_contact=by_contact,
    )
    attachment.file.save(name, ContentFile(data), save=False)
    attachment.save()
    return attachment


def upload_customer_attachment(
    channel: Channel,
    external_contact_id: str,
    *,
    stream: IO[bytes],
    name: str,
    declared_size: int | None = None,
) -> Attachment:
    """Keep a file a customer uploads before sending the message that carries it.

    The customer is known by the channel's id for them (a widget visitor id), as in
    ``receive_message``; a visitor who has never written gets their contact now (not a
    conversation: their message opens that). The file is held on the contact until their
    message binds it (``receive_message(uploads=...)``). The file is checked (size, type)
    before the contact is made, so a refused file writes nothing.
    """
    from .inbound import _contact_for

    _check_storable(external_contact_id, field="external_contact_id")
    data = read_limited(stream, name, declared_size=declared_size)
    checked_file(data, name)
    contact = _contact_for(channel, external_contact_id, {})
    return upload_attachment(None, stream=io.BytesIO(data), name=name, by_contact=contact)


def _own_uploads(
    ids: list[int],
    conversation_id: int | None,
    *,
    by_employee: Employee | None,
    by_contact: Contact | None,
    lock: bool,
) -> dict[int, Attachment]:
    """The sender's unsent uploads among ``ids`` (in this conversation, or held on the contact);
    ``ActionError`` unless every id is one."""
    rules.check_count(len(ids))
    uploads = Attachment.objects.select_for_update() if lock else Attachment.objects.all()
    uploads = uploads.filter(
        # Held uploads have an uploader contact, never an employee: only by_contact finds them.
        Q(conversation_id=conversation_id) | Q(conversation__isnull=True),
        pk__in=ids,
        message__isnull=True,
        status=AttachmentStatus.READY,
    )
    uploads = uploads.filter(uploaded_by_employee=by_employee) if by_employee else uploads
    uploads = uploads.filter(uploaded_by_contact=by_contact) if by_contact else uploads
    found = {attachment.pk: attachment for attachment in uploads}
    if (by_employee is None and by_contact is None) or len(found) != len(ids):
        raise ActionError(_("One of the files is not an upload of yours for this conversation."), code="bad_attachment")
    return found


def check_uploads(attachment_ids: Sequence[int], *, conversation: Conversation | None, by_contact: Contact) -> None:
    """Refuse (``ActionError``) before anything is written or counted if ``bind_uploads`` would:
    a customer's message with a file that is not theirs spends none of their limits."""
    ids = list(dict.fromkeys(attachment_ids))
    if ids:
        _own_uploads(
            ids, conversation.pk if conversation else None, by_employee=None, by_contact=by_contact, lock=False
        )


def bind_uploads(
    message: Message,
    attachment_ids: Sequence[int],
    *,
    by_employee: Employee | None = None,
    by_contact: Contact | None = None,
) -> list[Attachment]:
    """Bind the sender's own unsent uploads in this conversation to ``message``.

    Call inside the transaction that writes the message. An id that is not the sender's
    unsent upload in this conversation (another's, another conversation's or company's, one
    already sent, a made-up id) is refused as a whole: nothing is bound. A customer's upload
    held on them (no conversation yet) joins the message's conversation now.
    """
    ids = list(dict.fromkeys(attachment_ids))
    if not ids:
        return []
    found = _own_uploads(ids, message.conversation_id, by_employee=by_employee, by_contact=by_contact, lock=True)
    Attachment.objects.filter(pk__in=ids).update(message=message, conversation_id=message.conversation_id)
    bound = [found[pk] for pk in ids]
    for attachment in bound:
        attachment.message = message
        attachment.conversation_id = message.conversation_id
    # A message just written: its snapshot shows these without a query (see snapshots.attachments_of).
    message.known_attachments = [*(getattr(message, "known_attachments", None) or []), *bound]
    return bound
