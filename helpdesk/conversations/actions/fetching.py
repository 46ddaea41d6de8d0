"""Customers' files from a provider: described when the message arrives, fetched by the worker.

``receive_inbound`` keeps each file the provider describes as a pending ``Attachment`` bound
to the message (``describe_inbound_files``) and, after commit, queues one task per file. The
task (``tasks.fetch_attachment``) calls ``fetch_inbound_file``:

- The adapter downloads it (``Adapter.fetch_file``, never more than ``ATTACHMENT_MAX_BYTES``),
  outside any transaction; the content is judged like any upload (``checked_file``).
- **ready**: stored, typed by its content.
- **refused**: over the size limit (declared or proved) or of a type not accepted. It is never
  stored, and the customer is told in their own channel by an automatic message, in their
  language, that leaves like any reply (a ``Delivery`` where the channel has one).
- **failed**: the provider could not give it: at once for a permanent error, after
  ``ATTACHMENT_FETCH_MAX_ATTEMPTS`` for a retryable one (backoff, or the provider's
  ``retry_after``).

Each change is recorded as ``attachment.updated`` carrying the message's snapshot, so open
inboxes redraw the message live. The last step is a compare-and-swap on the pending row: a
task that runs twice (the sweeper re-queued it) changes nothing the second time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from helpdesk.errors import ActionError
from helpdesk.events import log as events

from .. import attachments as rules
from ..adapters import FetchError, adapter_for
from ..inbound import InboundAttachment
from ..models import Attachment, AttachmentStatus, Conversation, Message
from ..snapshots import message_data
from ._common import _UNSTORABLE, _locked
from .attachments import checked_file
from .delivery import _say_automatically

log = logging.getLogger(__name__)

ERROR_MAX_CHARS = Attachment._meta.get_field("error").max_length
SOURCE_MAX_CHARS = 4096  # each text of a file's description (a signed URL is well under it)
SIZE_MAX = 2**63 - 1  # Attachment.size is a bigint
RETRY_MAX_SECONDS = 3600


def describe_inbound_files(message: Message, files: Sequence[InboundAttachment]) -> list[Attachment]:
    """Pending rows for the files a customer's message came with; inside the writer's transaction.

    Files past ``ATTACHMENTS_PER_MESSAGE`` are kept as refused (never fetched). Each pending
    file is queued for the worker once the transaction commits.
    """
    rows = []
    limit = settings.ATTACHMENTS_PER_MESSAGE
    for index, described in enumerate(files):
        source = _source(described)
        over = index >= limit
        rows.append(
            Attachment(
                company_id=message.conversation.company_id,
                conversation_id=message.conversation_id,
                message=message,
                name=rules.clean_name(described.name or described.kind or "file")[:255],
                size=source.get("size"),
                status=AttachmentStatus.REFUSED if over else AttachmentStatus.PENDING,
                error=_too_many(limit) if over else "",
                source=source,
                uploaded_by_contact_id=message.author_contact_id,
            )
        )
    rows = Attachment.objects.bulk_create(rows)
    message.known_attachments = rows
    pending = [row.pk for row in rows if row.status == AttachmentStatus.PENDING]
    if pending:
        transaction.on_commit(lambda: _queue_fetches(pending))
    return rows


def _source(described: InboundAttachment) -> dict:
    """The description as the worker will get it back (``Attachment.source``): its fields that
    are set, as the database can hold them. A provider's update comes from outside: a NUL or a
    lone surrogate is dropped from its text, a text is cut at ``SOURCE_MAX_CHARS``, and a size
    that is negative or past a 64-bit integer is left out (the fetch then measures the file)."""
    source = {}
    for key, value in asdict(described).items():
        if isinstance(value, str):
            value = _UNSTORABLE.sub("", value)[:SOURCE_MAX_CHARS]
        elif isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= SIZE_MAX:
            value = None
        if value not in ("", None):
            source[key] = value
    return source


def _too_many(limit: int) -> str:
    return _("A message can carry at most %(limit)s files.") % {"limit": limit}


def _queue_fetches(attachment_ids: list[int]) -> None:
    from .. import tasks

    for attachment_id in attachment_ids:
        tasks.queue_fetch(attachment_id)


def fetch_backoff(attempt: int) -> float:
    """Seconds before fetching again after ``attempt`` failed tries: doubling, capped."""
    return min(settings.ATTACHMENT_FETCH_RETRY_SECONDS * 2 ** max(attempt - 1, 0), RETRY_MAX_SECONDS)


def fetch_inbound_file(attachment_id: int, *, attempt: int = 1) -> float | None:
    """One try at fetching a pending file; seconds to wait before the next try, or None when done.

    Not one transaction: the provider is called with no transaction open, and only the outcome
    is written (``_finish``), if the file is still pending.
    """
    attachment = (
        Attachment.objects.select_related("message", "conversation__channel")
        .filter(pk=attachment_id, status=AttachmentStatus.PENDING)
        .first()
    )
    if attachment is None or attachment.message_id is None:
        return None
    limit = settings.ATTACHMENT_MAX_BYTES
    try:
        rules.check_size(attachment.size, attachment.name)  # the provider's word: refused unread
        fetched = adapter_for(attachment.conversation.channel.kind).fetch_file(
            attachment.conversation.channel, dict(attachment.source), max_bytes=limit
        )
        if len(fetched.data) > limit:  # an adapter that read too much: still never kept
            raise FetchError("too large", permanent=True, too_large=True)
        name, content_type = checked_file(
            fetched.data, attachment.source.get("name") or fetched.name or attachment.name
        )
    except ActionError as refusal:
        if refusal.code in REFUSALS:
            return _finish(attachment, AttachmentStatus.REFUSED, error=refusal.message, refusal=refusal.code)
        return _finish(attachment, AttachmentStatus.FAILED, error=refusal.message)
    except FetchError as error:
        if error.too_large:
            too_large = _reason("file_too_large", attachment.name)
            return _finish(attachment, AttachmentStatus.REFUSED, error=too_large, refusal="file_too_large")
        if error.permanent or attempt >= settings.ATTACHMENT_FETCH_MAX_ATTEMPTS:
            return _finish(attachment, AttachmentStatus.FAILED, error=error.message)
        return error.retry_after if error.retry_after is not None else fetch_backoff(attempt)
    except Exception as error:
        # A bug or an error the adapter did not classify: retried within the bounded attempts.
        # Only the type is kept: an exception's text may hold a URL with a token in it.
        log.exception("attachment %s: the adapter's fetch_file raised", attachment_id)
        if attempt >= settings.ATTACHMENT_FETCH_MAX_ATTEMPTS:
            return _finish(attachment, AttachmentStatus.FAILED, error=f"internal error ({type(error).__name__})")
        return fetch_backoff(attempt)
    # Stored before the row says so; a lost race leaves an unreferenced object, never a broken row.
    stored = attachment.file.storage.save(
        attachment.file.field.generate_filename(attachment, name), ContentFile(fetched.data)
    )
    return _finish(
        attachment, AttachmentStatus.READY, file=stored, name=name, content_type=content_type, size=len(fetched.data)
    )


# The refusals the customer is told about in their channel (a failed fetch is our problem, not theirs).
REFUSALS = ("file_too_large", "file_type_not_allowed")


def _reason(code: str, name: str) -> str:
    """The rules' own words for a refusal, in the active language."""
    try:
        if code == "file_too_large":
            rules.check_size(settings.ATTACHMENT_MAX_BYTES + 1, name)
        rules.check_type("", name)
    except ActionError as error:
        return error.message
    return ""


@transaction.atomic(durable=True)
def _finish(attachment: Attachment, status: str, *, error: str = "", refusal: str | None = None, **fields) -> None:
    conversation = _locked(Conversation(pk=attachment.conversation_id))
    changed = Attachment.objects.filter(pk=attachment.pk, status=AttachmentStatus.PENDING).update(
        status=status, error=error[:ERROR_MAX_CHARS], **fields
    )
    if not changed:
        return None
    message = (
        Message.objects.select_related("author_employee", "author_contact", "deleted_by", "delivery")
        .prefetch_related("attachments")
        .get(pk=attachment.message_id)
    )
    if message.while_blocked:
        # Kept unseen like its message: no event, and nothing is said to a blocked contact.
        return None
    events.record(conversation, "attachment.updated", message=message_data(message, reveal_deleted=False))
    if refusal and conversation.deleted_at is None:
        _tell_customer(conversation, refusal, attachment.name)
    return None


def _customer_language(conversation: Conversation) -> str:
    wanted = str((conversation.contact.attributes or {}).get("language") or "").strip()
    try:
        return translation.get_supported_language_variant(wanted.lower()) if wanted else settings.LANGUAGE_CODE
    except LookupError:
        return settings.LANGUAGE_CODE


def _tell_customer(conversation: Conversation, refusal: str, name: str) -> Message:
    """An automatic message to the customer, in their channel and language: their file was refused.

    It leaves like any reply: a Delivery where the channel has an outside API, the visitor's
    socket on the widget.
    """
    with translation.override(_customer_language(conversation)):
        body = _reason(refusal, name)
    return _say_automatically(conversation, body)


def sweep_pending_files(*, now=None, limit: int = 500) -> dict[str, int]:
    """Pending files whose task was lost: queued again; pending for too long: failed."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.ATTACHMENT_SWEEP_AFTER)
    hopeless = now - timedelta(seconds=settings.ATTACHMENT_FETCH_GIVE_UP_AFTER)
    pending = Attachment.objects.filter(status=AttachmentStatus.PENDING, message__isnull=False)
    expired = list(pending.filter(created_at__lt=hopeless).order_by("pk")[:limit])
    for attachment in expired:
        _finish(attachment, AttachmentStatus.FAILED, error=_("The file could not be fetched in time."))
    lost = list(
        pending.filter(created_at__lt=stale, created_at__gte=hopeless)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    _queue_fetches(lost)
    return {"requeued": len(lost), "failed": len(expired)}
