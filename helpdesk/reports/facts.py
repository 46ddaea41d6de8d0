"""Facts: the countable things of docs/metrics.md, folded from a conversation's events.

:func:`fold` is pure: given a conversation's running state and one event, it returns the new
state and the facts the event adds (or withdraws, ``sign=-1``). The rollups apply it to every
event as it is recorded, replay it over a conversation's events to subtract or add the
conversation back (deletion, restore), and replay it over the whole log to recount.
It dispatches on the event type only, never on a channel's kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Fact kinds (also the "kind" column of the touch table for the first three).
CUSTOMER_MESSAGE = "customer_message"
ACTIVE = "active"
NEW = "new"
REOPENED = "reopened"
RESOLVED = "resolved"
SNOOZED = "snoozed"
REPLY = "reply"
FIRST_RESPONSE = "first_response"
REPLY_TIME = "reply_time"
RESOLUTION_FIRST = "resolution_first"
RESOLUTION_LAST = "resolution_last"
RATING = "rating"

DURATIONS = (FIRST_RESPONSE, REPLY_TIME, RESOLUTION_FIRST, RESOLUTION_LAST)
METRIC_CODE = {FIRST_RESPONSE: 1, REPLY_TIME: 2, RESOLUTION_FIRST: 3, RESOLUTION_LAST: 4}
TOUCH_CODE = {CUSTOMER_MESSAGE: 1, ACTIVE: 2, NEW: 3}


@dataclass(frozen=True)
class Dims:
    """Who and what a fact is credited to; 0 means none (no team, unassigned, no role)."""

    team: int
    channel: int
    agent: int
    role: int
    priority: int

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.team, self.channel, self.agent, self.role, self.priority)


@dataclass(frozen=True)
class Fact:
    kind: str
    at: datetime
    conversation_id: int
    contact_id: int
    dims: Dims
    value: float | None = None  # seconds for durations, 1..5 for ratings
    sign: int = 1


@dataclass
class State:
    """What the fold must remember of one conversation (stored as JSON in ConversationStats)."""

    first_customer_at: str | None = None
    responded: bool = False
    waiting_since: str | None = None
    resolved_once: bool = False
    # The sample counted for "resolution time (last)": withdrawn when resolved again.
    last_resolution: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "first_customer_at": self.first_customer_at,
            "responded": self.responded,
            "waiting_since": self.waiting_since,
            "resolved_once": self.resolved_once,
            "last_resolution": self.last_resolution,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> State:
        data = data or {}
        return cls(
            first_customer_at=data.get("first_customer_at"),
            responded=bool(data.get("responded")),
            waiting_since=data.get("waiting_since"),
            resolved_once=bool(data.get("resolved_once")),
            last_resolution=data.get("last_resolution"),
        )


def _when(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _dims(snapshot: dict[str, Any], *, agent: int | None, role: int | None) -> Dims:
    return Dims(
        team=snapshot.get("team_id") or 0,
        channel=snapshot.get("channel_id") or 0,
        agent=agent or 0,
        role=(role or 0) if agent else 0,
        priority=snapshot.get("priority") or 0,
    )


def is_customer_message(message: dict[str, Any]) -> bool:
    return message.get("direction") == "in" and message.get("kind") == "message"


def is_human_reply(message: dict[str, Any]) -> bool:
    return (
        message.get("direction") == "out"
        and message.get("kind") == "message"
        and not message.get("automatic")
        and bool(message.get("author_employee_id"))
    )


def fold(
    state: State, *, type: str, payload: dict[str, Any], at: datetime, actor_id: int | None, role_of=None
) -> list[Fact]:
    """The facts one event adds; updates ``state`` in place.

    ``role_of(employee_id)`` answers an employee's current role for old events recorded
    before roles were written into them (``payload["roles"]``).
    """
    snapshot = payload.get("conversation") or {}
    conversation_id, contact_id = snapshot.get("id") or 0, snapshot.get("contact_id") or 0
    roles = payload.get("roles") or {}

    def role(key: str, employee_id: int | None) -> int | None:
        if not employee_id:
            return None
        if key in roles:
            return roles[key]
        return role_of(employee_id) if role_of else None

    assignee = snapshot.get("assignee_id")
    by_assignee = _dims(snapshot, agent=assignee, role=role("assignee", assignee))
    by_actor = _dims(snapshot, agent=actor_id, role=role("actor", actor_id))

    def fact(kind: str, when: datetime, dims: Dims, value: float | None = None, sign: int = 1) -> Fact:
        return Fact(kind, when, conversation_id, contact_id, dims, value, sign)

    out: list[Fact] = []
    if type == "conversation.created":
        out.append(fact(NEW, at, by_assignee))
    elif type == "message.created":
        message = payload.get("message") or {}
        when = _when(message.get("created_at") or at)
        if is_customer_message(message):
            out += [fact(CUSTOMER_MESSAGE, when, by_assignee), fact(ACTIVE, when, by_assignee)]
            if state.first_customer_at is None:
                state.first_customer_at = _iso(when)
            if state.waiting_since is None:
                state.waiting_since = _iso(when)
        elif is_human_reply(message):
            author = message["author_employee_id"]
            by_author = _dims(snapshot, agent=author, role=role("actor", author))
            out += [fact(REPLY, when, by_author), fact(ACTIVE, when, by_author)]
            if state.first_customer_at is not None and not state.responded:
                state.responded = True
                out.append(fact(FIRST_RESPONSE, when, by_author, _seconds(when, state.first_customer_at)))
            if state.waiting_since is not None:
                out.append(fact(REPLY_TIME, when, by_author, _seconds(when, state.waiting_since)))
                state.waiting_since = None
    elif type == "conversation.reopened":
        out.append(fact(REOPENED, at, by_assignee))
    elif type == "conversation.snoozed":
        out.append(fact(SNOOZED, at, by_actor))
    elif type == "conversation.resolved":
        out.append(fact(RESOLVED, at, by_actor))
        state.waiting_since = None
        if state.first_customer_at is not None:
            value = _seconds(at, state.first_customer_at)
            if not state.resolved_once:
                out.append(fact(RESOLUTION_FIRST, at, by_actor, value))
            if state.last_resolution:
                last = state.last_resolution
                out.append(fact(RESOLUTION_LAST, _when(last["at"]), Dims(*last["dims"]), last["value"], sign=-1))
            out.append(fact(RESOLUTION_LAST, at, by_actor, value))
            state.last_resolution = {"at": _iso(at), "dims": list(by_actor.as_tuple()), "value": value}
        state.resolved_once = True
    elif type == "conversation.rated":
        rating = payload.get("rating")
        if isinstance(rating, int) and 1 <= rating <= 5:
            out.append(fact(RATING, at, by_assignee, float(rating)))
    return out


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _seconds(later: datetime, earlier: str | datetime) -> float:
    return max(0.0, (later - _when(earlier)).total_seconds())
