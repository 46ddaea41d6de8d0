"""The Bots Long Poll's state, one row per VK channel: where to poll and how far it got."""

from __future__ import annotations

from django.db import models

from helpdesk.conversations.models import Channel


class LongPollState(models.Model):
    channel = models.OneToOneField(Channel, on_delete=models.PROTECT, related_name="vk_longpoll")
    # From groups.getLongPollServer; empty until fetched, and again when VK expires the key.
    server = models.CharField(max_length=500, blank=True)
    key = models.CharField(max_length=200, blank=True)
    # The last event stored: advanced only after every event before it is stored.
    ts = models.CharField(max_length=50, blank=True)
    # At most one poller at a time (integrations/lease.py).
    lease_holder = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    # A SHA-256 of the access token VK refused (error 5): polling stops until the token changes.
    refused_token = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"vk long poll of channel {self.channel_id}"
