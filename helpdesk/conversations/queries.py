"""Read-side queries for the inbox, all built on the access gate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from helpdesk.accounts.models import Employee

from .access import visible_conversations
from .models import Conversation, Direction, Message, ReadMarker, Status

VIEWS = ("mine", "unassigned", "all")


@contextmanager
def one_snapshot() -> Iterator[None]:
    """Run the reads inside as of one moment (a page and the event id it resumes from agree).

    PostgreSQL's default READ COMMITTED gives each statement its own snapshot; REPEATABLE
    READ gives the whole transaction one. It must be set before the first query, so only
    when no transaction is open yet (inside one, the outer transaction decides).
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


STATUSES = tuple(Status.values)
# The list orders agents choose from: newest activity, or priority (highest first, then the
# customer waiting longest, as the queue goes). The id last: pages never overlap.
ORDERINGS = {
    "newest": ("-last_activity_at", "-pk"),
    "priority": ("-priority", F("waiting_since").asc(nulls_last=True), "-last_activity_at", "-pk"),
}


def inbox(employee: Employee, *, view: str = "mine", status: str = Status.OPEN) -> QuerySet[Conversation]:
    """One inbox list: a view (mine / unassigned / all) and a status tab, newest activity first."""
    return inbox_rows(in_view(visible_conversations(employee).filter(status=status), employee, view), employee)


def in_view(qs: QuerySet[Conversation], employee: Employee, view: str) -> QuerySet[Conversation]:
    """Narrow conversations to a view of the inbox: mine, unassigned or all."""
    if view == "mine":
        return qs.filter(assignee=employee)
    if view == "unassigned":
        return qs.filter(assignee__isnull=True)
    return qs


def inbox_rows(qs: QuerySet[Conversation], employee: Employee) -> QuerySet[Conversation]:
    """What a row of an inbox list shows (with unread counts), newest activity first."""
    return (
        with_unread(qs, employee).select_related("contact", "channel", "assignee").order_by("-last_activity_at", "-pk")
    )


def with_unread(qs: QuerySet[Conversation], employee: Employee) -> QuerySet[Conversation]:
    """Annotate ``unread``: the customer's messages after this employee's read marker.

    Deleted ones don't count, nor those a blocked contact wrote (they notify nobody).
    """
    marker = ReadMarker.objects.filter(employee=employee, conversation=OuterRef("pk")).values("last_read_message_id")
    return qs.annotate(
        unread=Count(
            "messages",
            filter=Q(messages__direction=Direction.INBOUND)
            & Q(messages__deleted_at__isnull=True)
            & Q(messages__while_blocked=False)
            & Q(messages__id__gt=Coalesce(Subquery(marker[:1]), Value(0))),
        )
    )


def counts(employee: Employee, *, status: str = Status.OPEN) -> dict[str, int]:
    """How many conversations each view holds for a status tab (for the sidebar)."""
    qs = visible_conversations(employee).filter(status=status)
    return qs.aggregate(
        mine=Count("pk", filter=Q(assignee=employee)),
        unassigned=Count("pk", filter=Q(assignee__isnull=True)),
        all=Count("pk"),
    )


def thread(conversation: Conversation) -> QuerySet[Message]:
    return conversation.messages.select_related("author_employee", "author_contact", "deleted_by").order_by("pk")
