"""Pushing committed events to the sockets allowed to see them, and to outbound delivery."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from helpdesk.conversations.access import event_groups
from helpdesk.observability import metrics

log = logging.getLogger(__name__)


def publish(event: dict[str, Any]) -> None:
    """Send one committed event to every inbox group that may see it, then hand it to delivery.

    The two halves fail apart: the channel layer away (sockets catch up on reconnect) does not
    keep a reply's send from being queued, and the broker away (the sweeper queues the
    delivery later) does not keep the sockets from hearing of it. Each failure is logged.
    """
    from integrations import outbound

    try:
        message = {"type": "inbox.event", "event": event}
        sends = [(group, message) for group in sorted(event_groups(event))]
        sends += outbound.socket_sends(event)
        if sends:
            async_to_sync(_send_all)(sends)
        metrics.event_published(event)  # count and lag from its row being written; moves with the fan-out
    except Exception:
        log.exception("could not push event %s to the sockets", event["id"])
    try:
        outbound.enqueue(event)
    except Exception:
        log.exception("could not queue what event %s sends; the sweeper will", event["id"])


async def _send_all(sends: list[tuple[str, dict[str, Any]]]) -> None:
    layer = get_channel_layer()
    await asyncio.gather(*(layer.group_send(group, message) for group, message in sends))


def presence_group(company_id: int) -> str:
    """Every inbox socket of the company joins this group, whatever its scope: colleagues' presence."""
    return f"presence-{company_id}"


def publish_presence(*, company_id: int, employee_id: int, presence: str) -> None:
    """Tell the company's open inboxes that a colleague is now online, away or offline."""
    message = {"type": "inbox.presence", "employee_id": employee_id, "presence": presence}
    async_to_sync(_send_all)([(presence_group(company_id), message)])
