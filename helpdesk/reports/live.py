"""The live block of Reports: the queue per team, the longest wait, agents online and away with
their load now, through the reader's access scope (``queries`` re-exports it)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Min, Q
from django.utils import timezone

from helpdesk.accounts.models import Employee, Presence, Scope
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.conversations.models import Status


@dataclass(frozen=True)
class TeamQueue:
    team_id: int
    name: str
    waiting: int
    longest_wait: float | None  # seconds


@dataclass(frozen=True)
class AgentLive:
    id: int
    name: str
    presence: str
    open: int
    snoozed: int
    capacity: int


@dataclass(frozen=True)
class Live:
    queues: tuple[TeamQueue, ...]
    longest_wait: float | None
    online: int
    away: int
    agents: tuple[AgentLive, ...]


def live(reader: Employee) -> Live:
    """The queue per team, the longest wait, agents online and away with their load."""
    from helpdesk.accounts import presence

    access.require(reader, Perm.VIEW_REPORTS)
    now = timezone.now()
    visible = access.visible_conversations(reader)
    waiting = visible.filter(status=Status.OPEN, assignee__isnull=True)
    queues = []
    for row in waiting.values("team_id", "team__name").annotate(n=Count("pk"), oldest=Min("waiting_since")):
        longest = (now - row["oldest"]).total_seconds() if row["oldest"] else None
        queues.append(TeamQueue(row["team_id"] or 0, row["team__name"] or "", row["n"], longest))
    queues.sort(key=lambda q: (q.name, q.team_id))
    longest = max((q.longest_wait for q in queues if q.longest_wait is not None), default=None)
    from .queries import ReaderScope

    scope = ReaderScope.of(reader)
    employees = access.company_employees(reader).filter(is_active=True)
    if scope.scope == Scope.TEAMS:
        employees = employees.filter(Q(teams__in=scope.team_ids) | Q(pk=reader.pk)).distinct()
    elif scope.scope != Scope.ALL:
        employees = employees.filter(pk=reader.pk)
    load = {
        (row["assignee_id"], row["status"]): row["n"]
        for row in visible.filter(status__in=[Status.OPEN, Status.SNOOZED], assignee__isnull=False)
        .values("assignee_id", "status")
        .annotate(n=Count("pk"))
    }
    agents = []
    for e in employees.order_by("display_name", "pk"):
        agents.append(
            AgentLive(
                e.pk,
                e.display_name,
                presence.shown_presence(e),
                load.get((e.pk, Status.OPEN), 0),
                load.get((e.pk, Status.SNOOZED), 0),
                e.capacity,
            )
        )
    return Live(
        tuple(queues),
        longest,
        sum(1 for a in agents if a.presence == Presence.ONLINE),
        sum(1 for a in agents if a.presence == Presence.AWAY),
        tuple(agents),
    )
