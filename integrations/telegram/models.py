from django.db import models

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
