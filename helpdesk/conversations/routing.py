"""Automatic assignment: who gets a conversation nobody has, and in what order the queue goes.

This module decides; ``actions`` writes (``actions.hand_out`` assigns what is decided here).

Rules:

- Eligible agents are the members of the conversation's team (the whole company when it has
  none) who are active, online with an inbox tab open lately, allowed to reply, and under
  their capacity and the team's ``max_open_per_agent``. Capacity counts every open
  conversation assigned to them; the team's limit counts those of that team. Snoozed and
  resolved conversations do not count.
- Balanced (the default) picks the one with the fewest open conversations, ties going to
  whoever was assigned least recently (never first). Round robin picks whoever was assigned
  least recently. Manual never assigns: the team's conversations wait for a person.
- The queue: open, unassigned conversations of automatic teams (or of no team), highest
  priority first, then the customer waiting longest.

Race-freedom: every routing decision of a company runs under one transaction-scoped lock
(:func:`lock`), and counts are read inside it, so two transactions never both see room that
only one of them may fill. Lock order, to stay clear of deadlocks: the company row (admin
actions), then the queue gate, then this lock, then rows; queued conversations are taken with
SKIP LOCKED, so a lock holder never waits for a conversation another transaction holds.

The queue gate (:func:`gate`) spares a customer's message the routing lock when nobody has
room, which is most of the time in a busy queue. The message takes the gate *shared* (messages
never wait for one another) and looks for room with one query (:func:`has_room`); only if
there is some does it take the routing lock and hand out. Every other hand-out (an agent
freed, back online, given more capacity; the periodic sweep) takes the gate *exclusive* first,
so it waits for the messages in flight to commit and then sees their conversations in the
queue; and a message that reads the roster after such a hand-out committed sees the room it
left. So a conversation never waits in the queue while someone has room for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from helpdesk.accounts.models import AssignmentMethod, Employee, Presence, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.accounts.presence import fresh_since, online_agents

from .models import Conversation, Status

# pg_advisory_xact_lock(class, id): the class keeps our ids apart from other advisory locks.
ROUTING_LOCK_CLASS = 0x5C0A55
QUEUE_GATE_CLASS = 0x5C0A56
AUTOMATIC_METHODS = (AssignmentMethod.BALANCED, AssignmentMethod.ROUND_ROBIN)
# Highest priority first, then whoever has waited longest for an answer.
QUEUE_ORDER = ("-priority", F("waiting_since").asc(nulls_last=True), "created_at", "pk")


def lock(company_id: int, *, gate_held: bool = False) -> None:
    """Serialise routing within one company until the current transaction ends (PostgreSQL).

    The queue gate is taken exclusive first (lock order), unless the caller holds it already
    (``gate_held``: a customer's message, shared). SQLite needs nothing: its transactions take
    the database's one write lock up front.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("routing.lock() must run inside a transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            if not gate_held:
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [QUEUE_GATE_CLASS, company_id])
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ROUTING_LOCK_CLASS, company_id])


def gate(company_id: int, *, shared: bool) -> None:
    """The queue gate (see the module's notes): shared for a queued message, exclusive before a
    hand-out. Transaction-scoped like :func:`lock`, and taken before it."""
    if not connection.in_atomic_block:
        raise RuntimeError("routing.gate() must run inside a transaction")
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s, %s)", [QUEUE_GATE_CLASS, company_id])


def has_room(company_id: int) -> bool:
    """Might anyone take a conversation now? One query, no lock: False means nobody online and
    able to reply is under their capacity (team limits and methods only narrow that further);
    True means ``hand_out`` must look closer."""
    open_assigned = (
        Conversation.objects.filter(assignee=OuterRef("pk"), status=Status.OPEN, deleted_at__isnull=True)
        .order_by()
        .values("assignee")
        .annotate(n=Count("pk"))
        .values("n")
    )
    agents = (
        Employee.objects.select_related("role")
        .filter(company_id=company_id, is_active=True, presence=Presence.ONLINE, last_seen_at__gte=fresh_since())
        .annotate(open=Coalesce(Subquery(open_assigned), 0))
        .filter(capacity__gt=F("open"))
    )
    return any(agent.role.allows(Perm.REPLY) for agent in agents)


def queue(company_id: int) -> QuerySet[Conversation]:
    """Conversations waiting to be handed out, in the order they will be."""
    return (
        Conversation.objects.filter(
            company_id=company_id, status=Status.OPEN, assignee__isnull=True, deleted_at__isnull=True
        )
        .filter(Q(team__isnull=True) | Q(team__assignment_method__in=AUTOMATIC_METHODS))
        .order_by(*QUEUE_ORDER)
    )


def queue_companies() -> list[int]:
    """Companies with a queue and someone online to take from it."""
    waiting = Conversation.objects.filter(status=Status.OPEN, assignee__isnull=True, deleted_at__isnull=True)
    online = Employee.objects.filter(is_active=True, presence=Presence.ONLINE, last_seen_at__gte=fresh_since())
    return list(
        waiting.filter(company_id__in=online.values("company_id")).values_list("company_id", flat=True).distinct()
    )


@dataclass
class Agent:
    employee: Employee
    open: int = 0  # open conversations assigned to them, all teams
    open_by_team: dict[int | None, int] = field(default_factory=dict)
    team_ids: set[int] = field(default_factory=set)

    @property
    def last_assigned(self) -> tuple[bool, datetime | None]:
        # Never assigned sorts before any time.
        at = self.employee.last_assigned_at
        return (at is not None, at)


@dataclass
class Roster:
    """The company's eligible agents with their loads, read once and kept up to date as we assign."""

    agents: list[Agent]
    teams: dict[int, Team]

    @classmethod
    def load(cls, company_id: int) -> Roster:
        agents = {e.pk: Agent(employee=e) for e in online_agents(company_id)}
        if not agents:
            return cls(agents=[], teams={})  # nobody to hand anything to: no more queries
        memberships = Employee.teams.through.objects.filter(employee_id__in=list(agents))
        for employee_id, team_id in memberships.values_list("employee_id", "team_id"):
            agents[employee_id].team_ids.add(team_id)
        loads = (
            Conversation.objects.filter(
                company_id=company_id, status=Status.OPEN, deleted_at__isnull=True, assignee_id__in=list(agents)
            )
            .values("assignee_id", "team_id")
            .annotate(n=Count("pk"))
        )
        for row in loads:
            agent = agents[row["assignee_id"]]
            agent.open += row["n"]
            agent.open_by_team[row["team_id"]] = agent.open_by_team.get(row["team_id"], 0) + row["n"]
        teams = {team.pk: team for team in Team.objects.filter(company_id=company_id)}
        return cls(agents=list(agents.values()), teams=teams)

    def has_room(self) -> bool:
        return any(agent.open < agent.employee.capacity for agent in self.agents)

    def pick(self, team_id: int | None) -> Agent | None:
        """The agent the team's method chooses for a new conversation, or None (it waits)."""
        team = self.teams.get(team_id) if team_id else None
        method = team.assignment_method if team else AssignmentMethod.BALANCED
        if method not in AUTOMATIC_METHODS:
            return None
        limit = team.max_open_per_agent if team else None
        eligible = [
            agent
            for agent in self.agents
            if (team is None or team.pk in agent.team_ids)
            and agent.open < agent.employee.capacity
            and (limit is None or agent.open_by_team.get(team_id, 0) < limit)
        ]
        if not eligible:
            return None
        if method == AssignmentMethod.ROUND_ROBIN:
            return min(eligible, key=lambda a: (a.last_assigned, a.employee.pk))
        return min(eligible, key=lambda a: (a.open, a.last_assigned, a.employee.pk))

    def took(self, agent: Agent, team_id: int | None, at: datetime) -> None:
        """Count a conversation just given to ``agent``."""
        agent.open += 1
        agent.open_by_team[team_id] = agent.open_by_team.get(team_id, 0) + 1
        agent.employee.last_assigned_at = at


def pick_agent(conversation: Conversation) -> Employee | None:
    """Who automatic assignment would give this conversation to right now (None: it waits).

    Read-only; to assign, use ``actions.hand_out``, which decides under the routing lock.
    """
    agent = Roster.load(conversation.company_id).pick(conversation.team_id)
    return agent.employee if agent else None
