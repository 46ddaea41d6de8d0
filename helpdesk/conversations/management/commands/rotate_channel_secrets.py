"""Re-encrypt every channel's credentials with the newest key (the first of CHANNEL_SECRET_KEYS)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from helpdesk.conversations import secrets
from helpdesk.conversations.models import Channel


class Command(BaseCommand):
    help = (
        "Re-encrypt every channel's credentials with the first key in CHANNEL_SECRET_KEYS. "
        "Run it after putting a new key in front; then the old key can be dropped."
    )

    def handle(self, *args, **options):
        rotated = 0
        unreadable = []
        with transaction.atomic():
            for channel in Channel.objects.select_for_update().exclude(secrets="").order_by("pk"):
                try:
                    channel.secrets = secrets.rotate(channel.secrets)
                except secrets.SecretsUnreadable:
                    unreadable.append(channel.pk)
                    continue
                channel.save(update_fields=["secrets"])
                rotated += 1
            if unreadable:
                # Nothing is half-done: keep every key until each channel can be read.
                transaction.set_rollback(True)
                raise CommandError(
                    f"No configured key opens the credentials of channels {unreadable}; nothing was changed. "
                    "Put the key they were saved with back into CHANNEL_SECRET_KEYS and run this again."
                )
        self.stdout.write(f"Re-encrypted the credentials of {rotated} channel(s) with the newest key.")
