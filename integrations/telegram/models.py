from django.db import models
from django.utils import timezone

from helpdesk.conversations.models import Channel


class PollState(models.Model):
    """A polling-mode Telegram channel's getUpdates state: where it is, who polls, what went wrong.

    ``offset`` is the next update_id to ask for; it advances only after an update is stored.
    The lease (``integrations/lease.py``) lets one poll at a time run per channel.
    """

    channel = models.OneToOneField(Channel, on_delete=models.PROTECT, related_name="telegram_poll")
    offset = models.BigIntegerField(default=0)
    lease_holder = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Failures in a row (Telegram unreachable, a conflict): the next poll waits until retry_at.
    failures = models.PositiveIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # Set when Telegram refused the token: no more polls until the channel is saved again.
    stopped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"telegram poll state of channel {self.channel_id}"


class HeldUpdate(models.Model):
    """A customer's message kept, unseen, until they accept the channel's consent text.

    ``update`` is Telegram's Update as it came; on acceptance the held ones are stored as the
    conversation's messages in their order (``released_at``). Declining or withdrawing leaves
    them here, ``dropped_at`` set: kept for the record, never shown to an agent.
    """

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    user_id = models.CharField(max_length=64)  # the sender's Telegram id (the contact's external id)
    external_id = models.CharField(max_length=255)  # "<chat id>:<message id>", as the stored message will have
    update = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    # The consent question was sent because of this message.
    prompted_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    dropped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="telegram_held_once"),
        ]
        indexes = [models.Index(fields=["channel", "user_id", "id"], name="telegram_held_by_user")]

    def __str__(self) -> str:
        return f"held update {self.external_id} of channel {self.channel_id}"
