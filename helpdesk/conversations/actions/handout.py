"""Automatic assignment: the queue is handed out under the routing lock."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from helpdesk.accounts.models import Employee
from helpdesk.events import log as events

from .. import routing
from ..models import Conversation, Status
from ._common import _access_snapshot

HAND_OUT_BATCH = 50


@transaction.atomic(savepoint=False)
def hand_out(company_id: int, *, current: Conversation | None = None, gate_held: bool = False) -> list[int]:
    """Give queued conversations to agents with room, in queue order; returns the ids assigned.

    Joins the caller's transaction when there is one (the action that queued a conversation
    or freed an agent), so the change and its consequence commit together. ``current`` is a
    conversation the caller holds: if it is handed out, that object is updated in place.
    The rules are in ``routing``; the lock makes the counts it reads the truth until commit.
    ``gate_held``: the caller holds the queue gate shared (``route_queued``).
    """
    routing.lock(company_id, gate_held=gate_held)
    roster = routing.Roster.load(company_id)
    assigned: list[int] = []
    full: set[int | None] = set()  # teams (None: no team) nobody eligible can take more of
    while roster.has_room():
        waiting = routing.queue(company_id).exclude(team_id__in=[t for t in full if t is not None])
        if None in full:
            waiting = waiting.exclude(team__isnull=True)
        # SKIP LOCKED: a conversation another transaction holds is its business (an inbound
        # message routes its own); waiting for it while holding the lock could deadlock.
        batch = list(
            waiting.select_for_update(of=("self",), skip_locked=True).select_related("contact", "channel", "team")[
                :HAND_OUT_BATCH
            ]
        )
        if not batch:
            break
        for conversation in batch:
            if conversation.team_id in full:
                continue
            agent = roster.pick(conversation.team_id)
            if agent is None:
                full.add(conversation.team_id)
                continue
            if current is not None and conversation.pk == current.pk:
                conversation = current
            _auto_assign(conversation, agent, roster)
            assigned.append(conversation.pk)
            if not roster.has_room():
                break
    return assigned


def route_queued(conversation: Conversation) -> None:
    """A customer's message left ``conversation`` open with nobody: hand out only if someone may
    have room. Nobody has (the usual case in a busy queue): two queries, the queue gate taken
    shared and one look at the agents' loads, and no routing lock (``routing``'s notes say why
    a hand-out that room appears for later will still see this conversation)."""
    routing.gate(conversation.company_id, shared=True)
    if routing.has_room(conversation.company_id):
        hand_out(conversation.company_id, current=conversation, gate_held=True)


def release_assigned(employee: Employee, *, by: Employee) -> list[int]:
    """Give back the open and snoozed conversations of someone who can no longer answer them.

    For a deactivated employee: each is unassigned (a ``conversation.assigned`` event by
    ``by``, with ``reason: "released"``) and the open ones go to their teams' queues and are
    handed out at once; a snoozed one is routed when it wakes. Resolved ones keep their
    assignee, for the record. Runs inside the caller's transaction; the routing lock comes
    before the conversations' rows (lock order: company, routing, rows). Returns their ids.
    """
    routing.lock(employee.company_id)
    held = list(
        Conversation.objects.select_for_update(of=("self",))
        .filter(
            company_id=employee.company_id,
            assignee=employee,
            status__in=[Status.OPEN, Status.SNOOZED],
            deleted_at__isnull=True,
        )
        .select_related("contact", "channel", "team")
        .order_by("pk")
    )
    for conversation in held:
        previous = _access_snapshot(conversation)
        conversation.assignee = None
        conversation.save(update_fields=["assignee", "updated_at"])
        events.record(conversation, "conversation.assigned", actor=by, previous=previous, reason="released")
    if any(c.status == Status.OPEN for c in held):
        hand_out(employee.company_id)
    return [c.pk for c in held]


def _auto_assign(conversation: Conversation, agent: routing.Agent, roster: routing.Roster) -> None:
    now = timezone.now()
    previous = _access_snapshot(conversation)
    conversation.assignee = agent.employee
    conversation.save(update_fields=["assignee", "updated_at"])
    Employee.objects.filter(pk=agent.employee.pk).update(last_assigned_at=now)
    roster.took(agent, conversation.team_id, now)
    events.record(conversation, "conversation.assigned", previous=previous, automatic=True)


def _counts_for(snapshot: dict[str, Any]) -> bool:
    """Does the conversation take a place in its assignee's capacity (open, not deleted)?"""
    return snapshot["status"] == Status.OPEN and not snapshot.get("deleted") and snapshot["assignee_id"] is not None


def _hand_out_after(conversation: Conversation, previous: dict[str, Any]) -> None:
    """After a change: if it freed an agent's place or put the conversation in the queue, hand out."""
    now = {**_access_snapshot(conversation), "deleted": conversation.deleted_at is not None}
    kept = {key: now[key] for key in ("assignee_id", "team_id")} == {
        key: previous[key] for key in ("assignee_id", "team_id")
    }
    freed = _counts_for(previous) and not (_counts_for(now) and kept)
    queued = now["status"] == Status.OPEN and not now["deleted"] and now["assignee_id"] is None
    if freed or queued:
        hand_out(conversation.company_id, current=conversation)
