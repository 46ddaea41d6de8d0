"""PostgreSQL only: what lets each web process's relay tail the event log (helpdesk/events/tail.py).

- ``txid``: the id of the transaction that wrote the row (``pg_current_xact_id()``), so a
  reader can tell rows committed since its last snapshot whatever the order of their ids.
  Added without a default first (no table rewrite; older rows stay NULL and are never read
  by the relay, which starts at the end of the log), then given its default for new rows.
- An index on it: each read is a range from the previous snapshot's ``xmin``.
- A statement trigger sending ``NOTIFY smartchat_events`` from the writing transaction;
  PostgreSQL folds the notifications of one transaction into one, sent at commit.

The model does not declare the column: Django never writes it, and SQLite has none.
"""

from __future__ import annotations

from django.db import migrations

FORWARD = [
    "ALTER TABLE events_event ADD COLUMN txid xid8",
    "ALTER TABLE events_event ALTER COLUMN txid SET DEFAULT pg_current_xact_id()",
    "CREATE INDEX event_txid ON events_event (txid)",
    """CREATE FUNCTION smartchat_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('smartchat_events', '');
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER event_notify AFTER INSERT ON events_event"
    " FOR EACH STATEMENT EXECUTE FUNCTION smartchat_event_notify()",
]

BACKWARD = [
    "DROP TRIGGER IF EXISTS event_notify ON events_event",
    "DROP FUNCTION IF EXISTS smartchat_event_notify()",
    "DROP INDEX IF EXISTS event_txid",
    "ALTER TABLE events_event DROP COLUMN IF EXISTS txid",
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("events", "0004_audit_without_message_text")]

    operations = [migrations.RunPython(forward, backward)]
