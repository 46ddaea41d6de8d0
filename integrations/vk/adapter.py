"""VK, as core code sees it: replies (with their files, uploaded first) leave through the
worker by ``messages.send``; customers' photos and docs are downloaded by the worker."""

from __future__ import annotations

from helpdesk.conversations.adapters import Adapter
from helpdesk.conversations.models import ChannelKind

from . import files, outbound
from .setup import VkSetup


class VkAdapter(Adapter):
    def send(self, delivery) -> str:
        return outbound.send(delivery)

    def fetch_file(self, channel, source, *, max_bytes):
        return files.fetch_file(channel, source, max_bytes=max_bytes)


ADAPTER = VkAdapter(
    kind=ChannelKind.VK.value,
    label="VK",
    delivers=True,
    idempotent_sends=True,
    secret_fields=("access_token", "secret"),
    setup=VkSetup(),
)
