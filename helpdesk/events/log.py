"""Appending to the event log, and handing each event on once the transaction commits."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction

from helpdesk.accounts.models import Employee

from .models import Event

log = logging.getLogger(__name__)


def record(
    conversation, type: str, *, actor: Employee | None = None, previous: dict | None = None, **payload: Any
) -> Event:
    """Write one event row inside the caller's transaction; publish it after commit.

    ``previous`` carries the access snapshot from before the change (old team and
    assignee), so sockets that could see the conversation learn that it left them.
    """
    from helpdesk.conversations.snapshots import conversation_summary

    payload = {"conversation": conversation_summary(conversation), **payload}
    if previous:
        payload["previous"] = previous
    # Roles at this instant, so statistics credit work to the role held when it was done.
    payload["roles"] = {
        "actor": actor.role_id if actor is not None else None,
        "assignee": conversation.assignee.role_id if conversation.assignee_id else None,
    }
    event = Event(
        company_id=conversation.company_id, type=type, conversation=conversation, actor=actor, payload=payload
    )
    event.save(force_insert=True)
    transaction.on_commit(partial(_publish_safely, serialise(event)))
    return event


def serialise(event: Event) -> dict[str, Any]:
    return {
        "id": event.pk,
        "type": event.type,
        "conversation_id": event.conversation_id,
        "actor_id": event.actor_id,
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }


def _publish_safely(event: dict[str, Any]) -> None:
    # Waking the relays and queueing outbound delivery must not turn a committed change into
    # an error for the caller: the relays read the log anyway, the sweeper queues deliveries.
    from helpdesk.observability import metrics
    from helpdesk.realtime import fanout

    metrics.event_committed(event)  # once per event, here where it was written (messages in/out)
    try:
        fanout.publish(event)
    except Exception:
        log.exception("could not fan out event %s", event["id"])
