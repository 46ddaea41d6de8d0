"""Read-side queries for the inbox, all built on the access gate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Case, Count, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from helpdesk.accounts.models import Company, Employee

from .access import team_ids, visible_conversations
from .models import Conversation, Direction, Mention, Message, MessageKind, ReadMarker, Status

VIEWS = ("mine", "unassigned", "all", "mentions")


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


def inbox(
    employee: Employee, *, view: str = "mine", status: str = Status.OPEN, teams: list[int] | None = None
) -> QuerySet[Conversation]:
    """One inbox list: a view and a status tab, newest activity first (Mentions: newest mention first).

    ``teams``: the employee's team ids when the caller has read them already (else read here).
    ``count_mentions=False``: no Mentions count (its key is left out), for a caller that has
    the whole Mentions list of the tab in hand and counts its unread rows itself.
    """
    teams = team_ids(employee) if teams is None else teams  # once: the gate and the mentions both need them
    qs = in_view(visible_conversations(employee, teams=teams).filter(status=status), employee, view, teams=teams)
    if view != "mentions":  # that view has annotated them already
        qs = with_mentions(qs, employee, teams=teams)
    rows = inbox_rows(qs, employee, narrow=True)
    return rows.order_by("-last_mention_message_id", "-pk") if view == "mentions" else rows


def in_view(
    qs: QuerySet[Conversation], employee: Employee, view: str, *, teams: list[int] | None = None
) -> QuerySet[Conversation]:
    """Narrow conversations to a view of the inbox: mine, unassigned, all, or where one was mentioned.

    ``teams``: the employee's team ids when the caller has read them already (else read here).
    """
    if view == "mine":
        return qs.filter(assignee=employee)
    if view == "unassigned":
        return qs.filter(assignee__isnull=True)
    if view == "mentions":
        # From the employee's mentions (a few, by index) to their conversations, not the other
        # way round: every visible conversation would run the mention subquery.
        teams = team_ids(employee) if teams is None else teams
        mentioned = mentions_of(employee, teams=teams).values("conversation_id")
        return with_mentions(qs.filter(pk__in=mentioned), employee, teams=teams)
    return qs


def mentions_of(employee: Employee, *, teams: list[int] | None = None) -> QuerySet[Mention]:
    """Mentions of the employee or of a team of theirs (``teams``, read here unless given), in
    notes by others that are not deleted."""
    # The team ids as values: both halves of the OR are then index ranges, not a scan of every mention.
    # Mentions are only ever in notes: saying so lets the notes' own index answer (msg_notes).
    teams = team_ids(employee) if teams is None else teams
    mentions = Mention.objects.filter(Q(employee=employee) | Q(team_id__in=teams))
    return mentions.filter(message__kind=MessageKind.NOTE).exclude(
        Q(message__author_employee=employee) | Q(message__deleted_at__isnull=False)
    )


def _read_marker(employee: Employee, conversation: str | OuterRef = "pk") -> Coalesce:
    """How far the employee has read the conversation whose id is the outer query's ``conversation``."""
    outer = conversation if isinstance(conversation, OuterRef) else OuterRef(conversation)
    marker = ReadMarker.objects.filter(employee=employee, conversation=outer)
    return Coalesce(Subquery(marker.values("last_read_message_id")[:1]), Value(0))


def with_mentions(
    qs: QuerySet[Conversation], employee: Employee, *, teams: list[int] | None = None
) -> QuerySet[Conversation]:
    """Annotate ``last_mention_message_id`` (the note with the newest mention of the employee, or None)
    and ``mention_unread`` (a mention after their read marker).
    """
    mentions = mentions_of(employee, teams=teams).filter(conversation=OuterRef("pk"))
    # A mention after the marker exists exactly when the newest one is after it: a comparison on
    # the row, not an EXISTS (which PostgreSQL may run as a hash of all the reader's mentions).
    return qs.annotate(
        last_mention_message_id=Subquery(mentions.order_by("-message_id").values("message_id")[:1])
    ).annotate(mention_unread=Case(When(last_mention_message_id__gt=_read_marker(employee), then=True), default=False))


# What snapshots.conversation_summary reads of a listed conversation and of its contact, channel
# and assignee: the list loads only these (a channel's settings and secrets, a contact's
# attributes, an employee's whole row, 100 times over, were a third of a page's list time).
ROW_FIELDS = (
    "company_id",
    "channel_id",
    "contact_id",
    "status",
    "assignee_id",
    "team_id",
    "priority",
    "snoozed_until",
    "last_activity_at",
    "waiting_since",
    "last_message_preview",
    "deleted_at",
    "contact__name",
    "contact__email",
    "contact__phone",
    "channel__kind",
    "channel__name",
    "assignee__display_name",
)


def inbox_rows(qs: QuerySet[Conversation], employee: Employee, *, narrow: bool = False) -> QuerySet[Conversation]:
    """What a row of an inbox list shows (with unread counts), newest activity first.

    ``narrow``: load only :data:`ROW_FIELDS` (the inbox list and page, which show nothing else).
    """
    rows = with_unread(qs, employee).select_related("contact", "channel", "assignee")
    if narrow:
        rows = rows.only(*ROW_FIELDS)
    return rows.order_by("-last_activity_at", "-pk")


def with_unread(qs: QuerySet[Conversation], employee: Employee) -> QuerySet[Conversation]:
    """Annotate ``unread``: the customer's messages after this employee's read marker.

    Deleted ones don't count, nor those a blocked contact wrote (they notify nobody). A
    subquery per row, not a join: PostgreSQL runs it only for the rows a page returns (after
    the sort and the LIMIT), each a range of the ``msg_unread`` index from the read marker on,
    so a list costs the same at a million messages. A count of the list never runs it.
    """
    unread = (
        Message.objects.filter(
            conversation=OuterRef("pk"),
            direction=Direction.INBOUND,
            deleted_at__isnull=True,
            while_blocked=False,
            # The marker of the listed conversation, read once per row: a bound of the index range.
            id__gt=_read_marker(employee, OuterRef(OuterRef("pk"))),
        )
        .order_by()
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return qs.annotate(unread=Coalesce(Subquery(unread), Value(0)))


class _CountRows(Func):
    """``COUNT(*)`` as a plain expression: a subquery that counts its rows, with no GROUP BY.

    ``COUNT(*)``, not ``COUNT(id)``: then the count reads only the index (``conv_counts``).
    """

    template = "COUNT(*)"
    output_field = IntegerField()


def _count(qs: QuerySet[Conversation]) -> Subquery:
    return Subquery(qs.order_by().annotate(n=_CountRows()).values("n"))


def counts(
    employee: Employee, *, status: str = Status.OPEN, teams: list[int] | None = None, count_mentions: bool = True
) -> dict[str, int]:
    """For the sidebar: how many conversations each view holds for a status tab.

    Mentions counts only the conversations with a mention the employee has not read yet.
    ``teams``: the employee's team ids when the caller has read them already (else read here).

    One statement, four counts, each by its own index range (an index-only scan of
    ``conv_counts``), not one pass over the tab testing four filters on every row.
    """
    teams = team_ids(employee) if teams is None else teams
    qs = visible_conversations(employee, teams=teams).filter(status=status)
    # The conversations with a mention after the reader's marker: found from the mentions (one
    # hashed set), not by a subquery for each of the tab's conversations.
    unread_mention = mentions_of(employee, teams=teams).filter(message_id__gt=_read_marker(employee, "conversation_id"))
    views = {
        "mine": _count(qs.filter(assignee=employee)),
        "unassigned": _count(qs.filter(assignee__isnull=True)),
        "all": _count(qs),
    }
    if count_mentions:
        views["mentions"] = _count(qs.filter(pk__in=unread_mention.values("conversation_id")))
    row = Company.objects.filter(pk=employee.company_id).values(**views).first()
    return row or dict.fromkeys(views, 0)


def thread(conversation: Conversation) -> QuerySet[Message]:
    """A conversation's messages, oldest first, with what their snapshots show (files: one query)."""
    return (
        conversation.messages.select_related("author_employee", "author_contact", "deleted_by", "delivery")
        .prefetch_related("attachments")
        .order_by("pk")
    )
