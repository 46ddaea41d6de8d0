"""The outbox: one Delivery per reply to a channel that delivers (Telegram, VK, ...), its status
and attempts (docs/channels.md#delivery). Written by ``actions`` only."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .core import Channel, Conversation, Message


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Not delivered")
    # A send that began and never reported back (its worker died) on a channel without an
    # idempotency key: it may or may not have arrived, so a person decides whether to resend.
    UNKNOWN = "unknown", _("Delivery unknown")


class Delivery(models.Model):
    """One customer-visible outbound message on a channel with an outside API: the outbox row.

    Written in the same transaction as the message; the worker sends it (see ``docs/channels.md``).
    """

    id = models.BigAutoField(primary_key=True)
    message = models.OneToOneField(Message, on_delete=models.PROTECT, related_name="delivery")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    # Queued: not to be sent before this time (backoff, the provider's retry_after).
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Sending: when the current attempt was claimed; a claim older than the timeout is stale.
    claimed_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    # A delivery sent in several parts (a reply with files, one send per file): each part that
    # went out, by the adapter's key for it → the provider's id. Recorded as each one leaves
    # (``actions.record_delivery_part``), so a retry sends only the rest (docs/channels.md).
    parts = models.JSONField(default=dict, blank=True)
    # The provider's own words for the last failure (never a token or other secret).
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # The sweeper: queued ones that are due, and claims that went stale.
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(status__in=["queued", "sending"]),
                name="delivery_pending",
            ),
            # Order within a conversation: is an earlier one still on its way?
            models.Index(fields=["conversation", "id"], name="delivery_by_conversation"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of message {self.message_id}: {self.status}"

    @property
    def idempotency_key(self) -> int:
        """A key that stays the same for every attempt of this delivery (VK's ``random_id``)."""
        return self.pk
