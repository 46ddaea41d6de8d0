"""Reading the event log in commit order: what the relay of each web process tails.

Event ids are handed out at insert, but transactions commit in any order: a transaction
holding id 41 can commit after the one holding id 42. A reader that remembered "the highest
id I have read" would skip 41 for good. So the position is not an id.

On PostgreSQL every row carries the id of the transaction that wrote it (``txid``, filled by
a column default, migration 0005), and the position is the snapshot of the previous read.
One read returns exactly the rows that are visible now and were not visible in the previous
snapshot: those whose transaction is at or above that snapshot's ``xmin`` and was still in
flight (or not yet begun) then. Both reads run in one REPEATABLE READ transaction, so the
snapshot returned is the one the rows were read with. Nothing committed is ever skipped and
nothing is read twice, whatever the order of commits; a long transaction elsewhere only makes
the range read grow, it never holds delivery back.

On SQLite one writer at a time holds the database from its first write to its commit, so ids
commit in order and the position is simply the highest id read.

The same migration adds a statement trigger that sends ``NOTIFY smartchat_events`` from the
writing transaction; PostgreSQL folds identical notifications of one transaction into one and
delivers it at commit. :func:`listen_params` is what a listening connection needs.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, transaction

from .log import serialise
from .models import Event

CHANNEL = "smartchat_events"
# Constants, no input: the table is events_event (the migration names it too).
_SELECT = (
    "SELECT id, company_id, type, conversation_id, actor_id, payload, created_at, txid::text AS txid FROM events_event"
)
_SINCE = "txid >= pg_snapshot_xmin(%s::pg_snapshot) AND NOT pg_visible_in_snapshot(txid, %s::pg_snapshot)"


class Tail:
    """A position in the event log and the reads that move it (call from one thread)."""

    def __init__(self, using: str = "default") -> None:
        self.using = using
        self.position: Any = None

    @property
    def postgres(self) -> bool:
        return connections[self.using].vendor == "postgresql"

    def start(self) -> None:
        """Stand at the end of the log: later reads return only what commits from now on."""
        connection = connections[self.using]
        connection.close_if_unusable_or_obsolete()
        with connection.cursor() as cursor:
            if self.postgres:
                cursor.execute("SELECT pg_current_snapshot()::text")
                self.position = cursor.fetchone()[0]
            else:
                self.position = (
                    Event.objects.using(self.using).order_by("-id").values_list("id", flat=True).first() or 0
                )

    def read(self) -> list[dict[str, Any]]:
        """Events committed since the last read, by id, serialised as the sockets get them."""
        if self.position is None:
            self.start()
            return []
        connection = connections[self.using]
        connection.close_if_unusable_or_obsolete()
        with transaction.atomic(using=self.using):
            if self.postgres:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            rows, self.position = read_since(self.position, using=self.using)
        return [serialise(row) for row in rows]

    def close(self) -> None:
        connections[self.using].close()


def read_since(position: Any, *, using: str = "default") -> tuple[list[Event], Any]:
    """The events committed since ``position`` (None: since the log began), by id, and the
    position after them. On PostgreSQL the caller runs this in a REPEATABLE READ transaction, so
    the snapshot returned is the one the rows were read with (Tail.read; the statistics'
    applier, which keeps its position in a row written in the same transaction).

    A reader may run inside a transaction that wrote events itself (a test's, or a caller's):
    it sees those rows, but whether a snapshot counts its own transaction as visible depends on
    whether later ids were handed out elsewhere (``pg_current_snapshot`` leaves its own id out
    of the in-progress list). So its own rows are never judged by a snapshot: the position then
    also names its transaction and the last of its rows read ("<snapshot>/<txid>:<last id>"),
    and that transaction's rows are read by id, past that mark, until a reader no longer in it
    (it has committed: the position row it wrote is visible) has read the rest.
    """
    events = Event.objects.using(using)
    if connections[using].vendor != "postgresql":
        rows = list(events.filter(id__gt=int(position or 0)).order_by("id"))
        return rows, (rows[-1].id if rows else int(position or 0))
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_current_snapshot()::text, pg_current_xact_id_if_assigned()::text")
        now, mine = cursor.fetchone()
    marks: dict[str, int] = {}  # transaction id -> the last of its rows already read
    if position is None:
        where, params = "TRUE", []
    else:
        snapshot, _, mark = str(position).partition("/")
        where, params = _SINCE, [snapshot, snapshot]
        if mark:
            txid, last = mark.split(":")
            marks[txid] = int(last)
    if mine is not None:
        marks.setdefault(mine, 0)
    for txid, last in marks.items():  # at most two: the one that wrote the mark, and this one
        where = f"(({where}) AND txid <> %s::xid8) OR (txid = %s::xid8 AND id > %s)"
        params = [*params, txid, txid, last]
    rows = list(events.raw(f"{_SELECT} WHERE {where} ORDER BY id", params))
    if mine is None:
        return rows, now
    last = max([marks[mine]] + [row.id for row in rows if row.txid == mine])
    return rows, f"{now}/{mine}:{last}"


def listen_params(using: str = "default") -> dict[str, Any] | None:
    """Keyword arguments for ``psycopg.AsyncConnection.connect`` to LISTEN; None off PostgreSQL."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    params = dict(connection.get_connection_params())
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    return params
