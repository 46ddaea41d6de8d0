"""Files: an upload kept for a conversation, and binding uploads to the message they came with.

An upload is checked while it is read: never more than ``ATTACHMENT_MAX_BYTES`` is read, and
its type is judged by its first bytes (``attachments.sniff``), not its name. It is stored
with no message until its sender sends one (``bind_uploads``): an agent's reply or a
visitor's message. Nothing here is ever deleted.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import IO

from django.core.files.base import ContentFile
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError

from .. import access
from .. import attachments as rules
from ..models import Attachment, AttachmentStatus, Contact, Conversation, Message

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
    conversation: Conversation,
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
    sees an upload until the message that carries it is sent.
    """
    if by_employee is not None and not (by_employee.can(Perm.REPLY) or by_employee.can(Perm.ADD_NOTES)):
        # Files go out with a reply or a note: whoever may send neither may not upload.
        access.require(by_employee, Perm.REPLY)
    data = read_limited(stream, name, declared_size=declared_size)
    name, content_type = checked_file(data, name)
    attachment = Attachment(
        company_id=conversation.company_id,
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
    already sent, a made-up id) is refused as a whole: nothing is bound.
    """
    ids = list(dict.fromkeys(attachment_ids))
    if not ids:
        return []
    rules.check_count(len(ids))
    uploads = Attachment.objects.select_for_update().filter(
        pk__in=ids,
        conversation_id=message.conversation_id,
        message__isnull=True,
        status=AttachmentStatus.READY,
    )
    uploads = uploads.filter(uploaded_by_employee=by_employee) if by_employee else uploads
    uploads = uploads.filter(uploaded_by_contact=by_contact) if by_contact else uploads
    found = {attachment.pk: attachment for attachment in uploads}
    if (by_employee is None and by_contact is None) or len(found) != len(ids):
        raise ActionError(_("One of the files is not an upload of yours for this conversation."), code="bad_attachment")
    Attachment.objects.filter(pk__in=ids).update(message=message)
    bound = [found[pk] for pk in ids]
    for attachment in bound:
        attachment.message = message
    message.known_attachments = bound
    return bound
