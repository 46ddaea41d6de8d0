"""VK, as core code sees it: replies leave through the worker by ``messages.send``."""

from __future__ import annotations

from helpdesk.conversations.adapters import Adapter
from helpdesk.conversations.models import ChannelKind

from . import outbound
from .setup import VkSetup


class VkAdapter(Adapter):
    def send(self, delivery) -> str:
        return outbound.send(delivery)


ADAPTER = VkAdapter(
    kind=ChannelKind.VK.value,
    label="VK",
    delivers=True,
    idempotent_sends=True,
    secret_fields=("access_token", "secret"),
    setup=VkSetup(),
)
