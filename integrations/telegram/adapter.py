"""Telegram, as core code sees it: replies leave through the worker (sendMessage, sendPhoto,
sendDocument); customers' files are fetched by the worker (getFile)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from helpdesk.conversations.adapters import Adapter
from helpdesk.conversations.models import ChannelKind

from . import files, outbound
from .setup import TelegramSetup


class TelegramAdapter(Adapter):
    def send(self, delivery) -> str:
        return outbound.send(delivery)

    def fetch_file(self, channel, source, *, max_bytes):
        return files.fetch_file(channel, source, max_bytes=max_bytes)


ADAPTER = TelegramAdapter(
    kind=ChannelKind.TELEGRAM.value,
    label=_("Telegram"),
    delivers=True,
    # sendMessage has no idempotency key: a send whose outcome was lost waits for a person.
    idempotent_sends=False,
    secret_fields=("bot_token",),
    setup=TelegramSetup(),
)
