"""Files customers and agents send (docs/attachments.md): the Attachment rows and the storage
they are kept in. Written by ``actions`` only; read through ``access.visible_attachment``."""

from __future__ import annotations

import secrets

from django.core.files.storage import Storage
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from helpdesk.accounts.models import Company, Employee

from .core import Contact, Conversation, Message


class AttachmentStatus(models.TextChoices):
    READY = "ready", _("Ready")
    # Described by the provider (a Telegram file_id, a VK url) and being fetched by the worker.
    PENDING = "pending", _("Being fetched")
    # Over a limit (size, type): never stored; the customer was told in their channel.
    REFUSED = "refused", _("Refused")
    # The provider could not give it (gone, unreachable after retries).
    FAILED = "failed", _("Could not be fetched")


def attachment_path(attachment: Attachment, filename: str) -> str:
    """Where a file is kept: by company, month and a random name. The file's own name is not
    in the path (it's in the row), so nothing about it can be guessed from storage."""
    now = timezone.now()
    return f"{attachment.company_id}/{now:%Y/%m}/{secrets.token_urlsafe(24)}"


class _CurrentStorage(Storage):
    """``storages[alias]`` as the settings say now, asked on every use.

    A FileField calls its storage callable once, when models load; the store itself is
    chosen by ``STORAGES`` (local or S3), which deployments set and tests override, so the
    field holds this stand-in and every call reaches the configured storage.
    """

    def __init__(self, alias: str):
        object.__setattr__(self, "_alias", alias)

    def __getattribute__(self, name: str):
        if name.startswith("__") or name == "_alias":
            return object.__getattribute__(self, name)
        from django.core.files.storage import storages

        return getattr(storages[object.__getattribute__(self, "_alias")], name)


_ATTACHMENT_STORAGE = _CurrentStorage("attachments")


def _attachment_storage() -> Storage:
    return _ATTACHMENT_STORAGE


class Attachment(models.Model):
    """A file in a conversation: sent by a customer (any channel), or by an agent with a reply.

    Uploaded first (``message`` empty: an agent's or a visitor's upload before they send), then
    bound to the message it came with. Files from a provider arrive described (``source``) and
    are fetched by the worker (``pending`` until then). Served only by signed, expiring links to
    those who may see the conversation (``attachments.link``); never hard-deleted: a deleted
    message's files are hidden with it. Written by ``actions`` only.

    A website visitor's upload is held on the visitor (``uploaded_by_contact``, no
    ``conversation``) until the message that carries it is stored: a visitor who has never
    written has no conversation yet, and the message decides which one it goes to (it may
    open, reopen or start a new one). Binding sets both ``message`` and ``conversation``.
    """

    id = models.BigAutoField(primary_key=True)
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.PROTECT, null=True, blank=True, related_name="attachments"
    )
    message = models.ForeignKey(Message, on_delete=models.PROTECT, null=True, blank=True, related_name="attachments")
    file = models.FileField(upload_to=attachment_path, storage=_attachment_storage, max_length=255, blank=True)
    # The name the sender gave it (shown and used for downloads), and what it is by its content.
    name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=127, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=AttachmentStatus.choices, default=AttachmentStatus.READY)
    # Why it was refused or could not be fetched, for the thread (never a token).
    error = models.CharField(max_length=300, blank=True)
    # The provider's handle for fetching it ({"file_id": …} or {"url": …}, "kind": photo/doc/…).
    source = models.JSONField(default=dict, blank=True)
    uploaded_by_employee = models.ForeignKey(
        Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    uploaded_by_contact = models.ForeignKey(Contact, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["message", "id"], name="attachment_by_message")]
        constraints = [
            # No conversation only for a contact's unsent upload (held on the contact).
            models.CheckConstraint(
                condition=Q(conversation__isnull=False) | Q(message__isnull=True, uploaded_by_contact__isnull=False),
                name="attachment_held_by_contact",
            )
        ]

    def __str__(self) -> str:
        return f"attachment {self.pk} ({self.name})"

    @property
    def is_image(self) -> bool:
        """Shown inline (a preview); everything else is offered as a download."""
        from ..attachments import INLINE_IMAGE_TYPES

        return self.status == AttachmentStatus.READY and self.content_type in INLINE_IMAGE_TYPES
