"""Read state: an employee's read marker per conversation, and their other tabs told of it."""

from __future__ import annotations

import logging
from functools import partial

from django.db import connection, transaction

from helpdesk.accounts.models import Employee

from ..models import Conversation, ReadMarker

log = logging.getLogger(__name__)


@transaction.atomic
def mark_read(conversation: Conversation, *, employee: Employee) -> None:
    """Everything in the conversation so far counts as read by this employee."""
    last_id = conversation.messages.order_by("-pk").values_list("pk", flat=True).first() or 0
    if _mark_read(conversation, employee=employee, message_id=last_id):
        # The employee's other tabs clear their badges; a notice, not an event: nothing to replay.
        transaction.on_commit(
            partial(_tell_other_tabs, employee_id=employee.pk, conversation_id=conversation.pk, last_id=last_id)
        )


def _tell_other_tabs(*, employee_id: int, conversation_id: int, last_id: int) -> None:
    from helpdesk.realtime import notices

    try:
        notices.conversation_read(
            employee_id=employee_id, conversation_id=conversation_id, last_read_message_id=last_id
        )
    except Exception:
        # Like an event's fan-out, a notice that can't leave must not fail what was committed.
        log.exception("could not tell the other tabs of employee %s", employee_id)


def _mark_read(conversation: Conversation, *, employee: Employee, message_id: int) -> bool:
    """Move the marker forward to ``message_id``; True if it moved. One upsert on PostgreSQL."""
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(ReadMarker._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} (employee_id, conversation_id, last_read_message_id) VALUES (%s, %s, %s) "  # noqa: S608
                "ON CONFLICT (employee_id, conversation_id) DO UPDATE "
                "SET last_read_message_id = EXCLUDED.last_read_message_id "
                f"WHERE {table}.last_read_message_id < EXCLUDED.last_read_message_id RETURNING id",
                [employee.pk, conversation.pk, message_id],
            )
            return cursor.fetchone() is not None
    marker, created = ReadMarker.objects.get_or_create(
        employee=employee, conversation=conversation, defaults={"last_read_message_id": message_id}
    )
    if created:
        return True
    if marker.last_read_message_id < message_id:
        return bool(
            ReadMarker.objects.filter(pk=marker.pk, last_read_message_id__lt=message_id).update(
                last_read_message_id=message_id
            )
        )
    return False
