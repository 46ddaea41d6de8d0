"""Appending to the event log, and handing each event on once the transaction commits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import connection, transaction

from helpdesk.accounts.models import Employee

from .models import Event

log = logging.getLogger(__name__)

# SQL to run with an event's INSERT: (statement, parameters).
Statement = tuple[str, list[Any]]

# Called with (event, conversation) inside the transaction of each recorded event, just before
# the event's row is written (``event.pk`` is still None; every other field is set): statistics
# keep their rollups this way (registered by helpdesk.reports; events imports no higher layer).
# A hook either does its work itself and returns None, or returns statements to run with the
# event's INSERT: on PostgreSQL they join it as data-modifying CTEs (one statement, one round
# trip for the event and everything kept from it), elsewhere they run just before it.
_hooks: list[Callable[[Event, Any], list[Statement] | None]] = []


def add_hook(hook: Callable[[Event, Any], list[Statement] | None]) -> None:
    if hook not in _hooks:
        _hooks.append(hook)


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
    statements: list[Statement] = []
    for hook in _hooks:
        statements += hook(event, conversation) or []
    _insert(event, statements)
    transaction.on_commit(partial(_publish_safely, serialise(event)))
    return event


def _insert(event: Event, statements: list[Statement]) -> None:
    """INSERT the event, with the hooks' statements: on PostgreSQL as data-modifying CTEs of the
    same statement (they all run to completion whether or not the INSERT reads them)."""
    if not statements:
        event.save(force_insert=True)
        return
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
        event.save(force_insert=True)
        return
    meta = Event._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(event, add=True), connection) for f in fields]
    ctes = ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(statements))
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    # Our own table and column names; every value is a parameter.
    sql = (
        f"WITH {ctes} INSERT INTO {meta.db_table} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {meta.pk.column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [v for _, params in statements for v in params] + values)
        event.pk = cursor.fetchone()[0]
    event._state.adding = False
    event._state.db = connection.alias


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
