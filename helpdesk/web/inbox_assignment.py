"""What the inbox needs for presence, priority and reassignment: pickers, presence and history lines."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch

from helpdesk.accounts.models import Employee, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.accounts.presence import shown_presence
from helpdesk.conversations import access
from helpdesk.conversations.models import Conversation, Priority
from helpdesk.events.models import Event

# The conversation's history the thread shows as lines between the messages: who assigned,
# moved, prioritised, snoozed, woke, resolved, reopened or rated it.
HISTORY_EVENTS = (
    "conversation.assigned",
    "conversation.priority_changed",
    "conversation.snoozed",
    "conversation.woken",
    "conversation.resolved",
    "conversation.reopened",
    "conversation.rated",  # the customer's rating and comment (docs/csat.md)
)


def history_item(event: dict[str, Any], actor_name: str | None = None) -> dict[str, Any]:
    """An event as a history line needs it (no preview or message text: nothing deleted leaks)."""
    snapshot, payload = event["payload"]["conversation"], event["payload"]
    return {
        "id": event["id"],
        "type": event["type"],
        "created_at": event["created_at"],
        "actor_id": event["actor_id"],
        "actor_name": actor_name,
        "automatic": bool(payload.get("automatic")),
        "released": payload.get("reason") == "released",
        "reason": payload.get("reason"),  # why it woke up (conversation.woken)
        "until": payload.get("until"),  # until when it sleeps (conversation.snoozed)
        "assignee_id": snapshot.get("assignee_id"),
        "assignee_name": snapshot.get("assignee_name"),
        "team_id": snapshot.get("team_id"),
        "priority": snapshot.get("priority"),
        "previous": {key: payload.get("previous", {}).get(key) for key in ("assignee_id", "team_id")},
        "rating": payload.get("rating"),  # conversation.rated: the score and the customer's comment
        "comment": payload.get("comment", ""),
    }


def history(conversation: Conversation) -> list[dict[str, Any]]:
    events = (
        Event.objects.filter(conversation=conversation, type__in=HISTORY_EVENTS).select_related("actor").order_by("id")
    )
    return [
        history_item(
            {
                "id": e.pk,
                "type": e.type,
                "created_at": e.created_at.isoformat(),
                "actor_id": e.actor_id,
                "payload": e.payload,
            },
            actor_name=e.actor.display_name if e.actor_id else None,
        )
        for e in events
    ]


def inbox_colleagues(employee: Employee) -> list[Employee]:
    """The company's active employees, with their team ids, as the inbox needs them (read once a page)."""
    # Only what the page shows of them (name, presence, may they reply): an employee's sign-in
    # row and whole role, twenty times over, were most of this read's time.
    return list(
        access.company_employees(employee)
        .filter(is_active=True)
        .select_related(None)
        .select_related("role")
        .only("display_name", "presence", "last_seen_at", "role__permissions")
        .prefetch_related(Prefetch("teams", queryset=Team.objects.only("pk")))
        .order_by("display_name", "pk")
    )


def inbox_assignment_state(
    employee: Employee,
    conversation: Conversation | None,
    *,
    colleagues: list[Employee] | None = None,
    teams: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Colleagues who may be given a chat (with their teams), the teams, the priorities, presence, history.

    ``colleagues`` (:func:`inbox_colleagues`) and ``teams`` (the company's, ``id`` and ``name``
    by name) when the caller has read them already for the rest of the page.
    """
    if colleagues is None:
        colleagues = inbox_colleagues(employee)
    if teams is None:
        teams = list(access.company_teams(employee).order_by("name", "pk").values("id", "name"))
    return {
        "presence": {e.pk: shown_presence(e) for e in colleagues},
        "assignment": {
            "agents": [
                {"id": e.pk, "name": e.display_name, "team_ids": [t.pk for t in e.teams.all()]}
                for e in colleagues
                if e.role.allows(Perm.REPLY)
            ],
            "teams": teams,
            "priorities": [[value, str(label)] for value, label in Priority.choices],
            "history": history(conversation) if conversation else [],
        },
    }
