"""Read-side queries for the inbox, all built on the access gate."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from helpdesk.accounts.models import Employee

from .access import visible_conversations
from .models import Conversation, Direction, Message, ReadMarker, Status

VIEWS = ("mine", "unassigned", "all")
STATUSES = tuple(Status.values)


def inbox(employee: Employee, *, view: str = "mine", status: str = Status.OPEN) -> QuerySet[Conversation]:
    """One inbox list: a view (mine / unassigned / all) and a status tab, newest activity first."""
    qs = visible_conversations(employee).filter(status=status)
    if view == "mine":
        qs = qs.filter(assignee=employee)
    elif view == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    return (
        with_unread(qs, employee).select_related("contact", "channel", "assignee").order_by("-last_activity_at", "-pk")
    )


def with_unread(qs: QuerySet[Conversation], employee: Employee) -> QuerySet[Conversation]:
    """Annotate ``unread``: the customer's messages after this employee's read marker."""
    marker = ReadMarker.objects.filter(employee=employee, conversation=OuterRef("pk")).values("last_read_message_id")
    return qs.annotate(
        unread=Count(
            "messages",
            filter=Q(messages__direction=Direction.INBOUND)
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
    return conversation.messages.select_related("author_employee", "author_contact").order_by("pk")
