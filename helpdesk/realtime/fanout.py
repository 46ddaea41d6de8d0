"""Pushing committed events to the sockets allowed to see them, and to outbound delivery."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from helpdesk.conversations.access import event_groups

log = logging.getLogger(__name__)


def publish(event: dict[str, Any]) -> None:
    """One event committed in this process: wake this process's relays, and queue delivery.

    Sockets hear of the event from the relay of the process holding them (``relay.py``),
    which reads the event log: nothing here waits on the channel layer, and Redis away loses
    nothing. Queuing what the event sends to an outside channel stays here, on commit, as
    before (the sweeper queues whatever a crash or the broker away lost).
    """
    from integrations import outbound

    from . import relay

    relay.nudge()
    try:
        outbound.enqueue(event)
    except Exception:
        log.exception("could not queue what event %s sends; the sweeper will", event["id"])


def local_sends(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """What one event means for sockets, as (group, message): the inboxes, then customers' sockets.

    The relay hands each message to the local sockets registered for its group (a socket in
    two of the groups gets it once).
    """
    from integrations import outbound

    message = {"type": "inbox.event", "event": event}
    sends = [(group, message) for group in sorted(event_groups(event))]
    return sends + outbound.socket_sends(event)


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
