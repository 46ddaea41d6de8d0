"""Messages on the short road: a customer's (what a long-lived connection knows) or an agent's
plain reply, each written in one statement.

``receive_message`` takes this road when its caller passes a ``SenderHint`` (the widget's socket
does: it remembers the conversation its visitor's last message went to, or that it found no
contact for the visitor when it connected) and the message is plain text by its one author.

- **Into an open conversation** (``into_open``): one statement updates the conversation and
  inserts the message, and reads back the conversation with its contact, channel and assignee.
  The conversation is updated only if it is still the sender's latest, open, not deleted, and
  the sender not blocked; otherwise nothing is written and the long road runs.
- **A new visitor's first message** (``first_of_new``): one statement inserts the contact, its
  identity, the conversation and the message.

Idempotency is the unique ``external_id``: the insert does nothing on a conflict, and the caller
rolls the transaction back (``Duplicate``) and returns the message stored before. A hint that
turns out stale (the visitor's identity exists after all) rolls back too (``StaleHint``).
- **An agent's plain reply** (``reply``): one statement updates the conversation, inserts the
  reply and moves the agent's read marker, unless the conversation is snoozed and not theirs
  (the reply wakes it: the long road).

Both roads write the same rows and record the same events; ``tests/test_message_queries.py``
holds the two to the same outcome and counts their queries.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model

from helpdesk.accounts.models import Employee

from ..models import (
    Channel,
    Contact,
    ContactIdentity,
    Conversation,
    Direction,
    Message,
    MessageKind,
    ReadMarker,
    Status,
)
from ..snapshots import preview_of


class Duplicate(Exception):
    """A message with this ``external_id`` is stored already: roll back, return that one."""


class StaleHint(Exception):
    """The sender's hint was wrong (their identity exists): roll back, take the long road."""


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _columns(model: type[Model]) -> list:
    return list(model._meta.concrete_fields)


def _select_list(model: type[Model], alias: str) -> str:
    return ", ".join(f"{alias}.{_q(f.column)}" for f in _columns(model))


def _insert(
    obj: Model, *, refs: dict[str, str] | None = None, on_conflict: bool = False, source: str | None = None
) -> tuple[str, list[Any]]:
    """``INSERT INTO <table> (...) VALUES (...) RETURNING id`` for an unsaved instance.

    ``refs`` gives SQL for some columns (by attname) instead of the instance's value, such as the
    id a previous part of the statement inserted. Each value is cast to its column's type. With
    ``source`` the row is ``SELECT``ed from it instead (no row there: nothing inserted).
    """
    refs = refs or {}
    columns, values, params = [], [], []
    for f in _columns(type(obj)):
        if f.primary_key:
            continue
        columns.append(_q(f.column))
        if f.attname in refs:
            values.append(refs[f.attname])
        else:
            values.append(f"%s::{f.db_type(connection)}" if connection.vendor == "postgresql" else "%s")
            params.append(f.get_db_prep_save(f.pre_save(obj, True), connection))
    # Table, column and CTE names are ours; every value is a parameter.
    row = f"SELECT {', '.join(values)} FROM {source}" if source else f"VALUES ({', '.join(values)})"  # noqa: S608
    sql = f"INSERT INTO {_q(obj._meta.db_table)} ({', '.join(columns)}) {row}"
    if on_conflict:
        sql += " ON CONFLICT DO NOTHING"
    return sql + " RETURNING id", params


def _from_row(model: type[Model], row: list[Any]) -> Model:
    names = [f.attname for f in _columns(model)]
    converters = connection.ops.get_db_converters
    values = []
    for f, value in zip(_columns(model), row, strict=True):
        expression = f.get_col(model._meta.db_table)
        for converter in converters(expression) + expression.get_db_converters(connection):
            value = converter(value, expression, connection)
        values.append(value)
    return model.from_db(connection.alias, names, values)


def _message(channel: Channel, *, body: str, external_id: str | None, now: datetime) -> Message:
    return Message(
        channel=channel,
        direction=Direction.INBOUND,
        kind=MessageKind.MESSAGE,
        body=body,
        external_id=external_id or None,
        created_at=now,
    )


def _saved(obj: Model, pk: int) -> Model:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias
    return obj


def insert_new(obj: Model) -> None:
    """Insert an unsaved row (a message) unless its unique key is taken: then ``Duplicate``.

    One statement, no savepoint: ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``.
    """
    sql, params = _insert(obj, on_conflict=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise Duplicate
    _saved(obj, row[0])


def into_open(
    *,
    channel: Channel,
    external_contact_id: str,
    conversation_id: int,
    body: str,
    external_id: str | None,
    now: datetime,
) -> tuple[Conversation, Message] | None:
    """Add the message to the sender's open conversation in one statement, or None (nothing written).

    None when the conversation is no longer the sender's latest on the channel, is not open,
    was deleted, or the sender is blocked: the long road decides those. ``Duplicate`` when the
    message was stored before (the caller rolls the conversation's update back).
    """
    conversations = Conversation._meta.db_table
    contacts, identities = Contact._meta.db_table, ContactIdentity._meta.db_table
    preview = preview_of(body)
    message = _message(channel, body=body, external_id=external_id, now=now)
    insert, insert_params = _insert(
        message, refs={"conversation_id": "v.id", "author_contact_id": "v.contact_id"}, on_conflict=True, source="v"
    )
    returning = ", ".join(_q(f.column) for f in _columns(Conversation))
    # Table and column names are ours; every value is a parameter.
    sql = f"""
        WITH v AS (
            UPDATE {_q(conversations)} AS c
            SET last_activity_at = %s, waiting_since = COALESCE(c.waiting_since, %s),
                last_message_preview = %s, updated_at = %s
            WHERE c.id = %s AND c.channel_id = %s AND c.status = %s AND c.deleted_at IS NULL
              AND EXISTS (
                SELECT 1 FROM {_q(identities)} i
                WHERE i.channel_id = c.channel_id AND i.external_id = %s AND i.contact_id = c.contact_id)
              AND NOT EXISTS (
                SELECT 1 FROM {_q(contacts)} b
                WHERE b.id = c.contact_id AND b.blocked_at IS NOT NULL
                  AND (b.blocked_until IS NULL OR b.blocked_until > %s))
              AND NOT EXISTS (
                SELECT 1 FROM {_q(conversations)} n
                WHERE n.contact_id = c.contact_id AND n.channel_id = c.channel_id
                  AND n.deleted_at IS NULL AND n.id > c.id)
            RETURNING {returning}
        ), m AS ({insert})
        SELECT (SELECT id FROM m), {_select_list(Conversation, "v")}, {_select_list(Contact, "ct")},
               {_select_list(Channel, "ch")}, {_select_list(Employee, "e")}
        FROM v
        JOIN {_q(contacts)} ct ON ct.id = v.contact_id
        JOIN {_q(Channel._meta.db_table)} ch ON ch.id = v.channel_id
        LEFT JOIN {_q(Employee._meta.db_table)} e ON e.id = v.assignee_id
    """  # noqa: S608
    params = [now, now, preview, now, conversation_id, channel.pk, Status.OPEN, external_contact_id, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params + insert_params)
        row = cursor.fetchone()
    if row is None:
        return None
    message_id, parts = row[0], _split(list(row[1:]), Conversation, Contact, Channel, Employee)
    if message_id is None:
        raise Duplicate
    conversation = _from_row(Conversation, parts[0])
    conversation.contact = _from_row(Contact, parts[1])
    conversation.channel = _from_row(Channel, parts[2])
    conversation.assignee = _from_row(Employee, parts[3]) if conversation.assignee_id else None
    message = _saved(message, message_id)
    message.conversation = conversation
    message.author_contact = conversation.contact
    message.known_attachments = []
    return conversation, message


def first_of_new(
    *,
    channel: Channel,
    external_contact_id: str,
    contact: Contact,
    body: str,
    external_id: str | None,
    now: datetime,
) -> tuple[Conversation, Conversation, Message]:
    """A new sender's first message: contact, identity, conversation and message in one statement.

    Returns the conversation as it was opened (for ``conversation.created``), as it is after
    the message, and the message. ``StaleHint`` if the sender's identity exists already;
    ``Duplicate`` if the message does (the caller rolls back either way).
    """
    contact.company_id = channel.company_id
    identity = ContactIdentity(channel=channel, external_id=external_contact_id, created_at=now)
    conversation = Conversation(
        company_id=channel.company_id,
        channel=channel,
        team_id=channel.team_id,
        last_activity_at=now,
        waiting_since=now,
        last_message_preview=preview_of(body),
        created_at=now,
    )
    message = _message(channel, body=body, external_id=external_id, now=now)
    contact_sql, contact_params = _insert(contact)
    identity_sql, identity_params = _insert(identity, refs={"contact_id": "(SELECT id FROM k)"}, on_conflict=True)
    conversation_sql, conversation_params = _insert(conversation, refs={"contact_id": "(SELECT id FROM k)"})
    message_sql, message_params = _insert(
        message,
        refs={"conversation_id": "(SELECT id FROM v)", "author_contact_id": "(SELECT id FROM k)"},
        on_conflict=True,
    )
    sql = f"""
        WITH k AS ({contact_sql}), i AS ({identity_sql}), v AS ({conversation_sql}), m AS ({message_sql})
        SELECT (SELECT id FROM k), (SELECT id FROM i), (SELECT id FROM v), (SELECT id FROM m)
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, contact_params + identity_params + conversation_params + message_params)
        contact_id, identity_id, conversation_id, message_id = cursor.fetchone()
    if identity_id is None:
        raise StaleHint
    if message_id is None:
        raise Duplicate
    contact = _saved(contact, contact_id)
    conversation = _saved(conversation, conversation_id)
    conversation.contact = contact
    conversation.channel = channel
    conversation.assignee = None
    message = _saved(message, message_id)
    message.conversation = conversation
    message.author_contact = contact
    message.known_attachments = []
    opened = copy.copy(conversation)
    opened.waiting_since, opened.last_message_preview = None, ""
    return opened, conversation, message


def _split(row: list[Any], *models: type[Model]) -> list[list[Any]]:
    parts = []
    for model in models:
        width = len(_columns(model))
        parts.append(row[:width])
        row = row[width:]
    return parts


def reply(
    *, conversation_id: int, by: Employee, body: str, now: datetime, idempotency_key: str | None = None
) -> tuple[Conversation, Message] | None:
    """An agent's plain reply in one statement: the conversation updated (the customer has their
    answer), the reply inserted, the agent's read marker moved to it; or None, nothing written,
    when the conversation is snoozed and not the agent's (the reply wakes it: the long road).
    """
    conversations, markers = Conversation._meta.db_table, ReadMarker._meta.db_table
    message = Message(
        channel_id=None,
        direction=Direction.OUTBOUND,
        kind=MessageKind.MESSAGE,
        author_employee=by,
        body=body,
        created_at=now,
        idempotency_key=idempotency_key,
    )
    insert, insert_params = _insert(message, refs={"conversation_id": "v.id", "channel_id": "v.channel_id"}, source="v")
    returning = ", ".join(_q(f.column) for f in _columns(Conversation))
    # Table and column names are ours; every value is a parameter.
    sql = f"""
        WITH v AS (
            UPDATE {_q(conversations)} AS c
            SET last_activity_at = %s, waiting_since = NULL, last_message_preview = %s, updated_at = %s
            WHERE c.id = %s AND NOT (c.status = %s AND c.assignee_id IS DISTINCT FROM %s)
            RETURNING {returning}
        ), m AS ({insert}), r AS (
            INSERT INTO {_q(markers)} AS r (employee_id, conversation_id, last_read_message_id)
            SELECT %s, v.id, m.id FROM v, m
            ON CONFLICT (employee_id, conversation_id) DO UPDATE
            SET last_read_message_id = EXCLUDED.last_read_message_id
            WHERE r.last_read_message_id < EXCLUDED.last_read_message_id
        )
        SELECT (SELECT id FROM m), {_select_list(Conversation, "v")}, {_select_list(Contact, "ct")},
               {_select_list(Channel, "ch")}, {_select_list(Employee, "e")}
        FROM v
        JOIN {_q(Contact._meta.db_table)} ct ON ct.id = v.contact_id
        JOIN {_q(Channel._meta.db_table)} ch ON ch.id = v.channel_id
        LEFT JOIN {_q(Employee._meta.db_table)} e ON e.id = v.assignee_id
    """  # noqa: S608
    params = [now, preview_of(body), now, conversation_id, Status.SNOOZED, by.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params + insert_params + [by.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    message_id, parts = row[0], _split(list(row[1:]), Conversation, Contact, Channel, Employee)
    conversation = _from_row(Conversation, parts[0])
    conversation.contact = _from_row(Contact, parts[1])
    conversation.channel = _from_row(Channel, parts[2])
    conversation.assignee = _from_row(Employee, parts[3]) if conversation.assignee_id else None
    message = _saved(message, message_id)
    message.conversation = conversation
    message.channel_id = conversation.channel_id
    message.author_employee = by
    message.known_attachments = []
    return conversation, message
