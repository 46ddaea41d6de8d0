"""The same figures computed straight from raw rows: messages, events, conversations.

This is the reference the tests compare the rollups with, and a working (slow) way to get
any figure for small companies. The product reads the rollups (rollup_source.py): this module
scans every message of the company and must never serve a page.

It follows docs/metrics.md on its own: customer messages and human replies come from the
messages table (their time, author, kind, ``automatic``); status changes and ratings from the
event log; who and what each is credited to from the conversation snapshot and roles recorded
with the event of that moment.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from helpdesk.accounts.models import Employee
from helpdesk.conversations.models import Conversation, Direction, Message, MessageKind
from helpdesk.events.models import Event

from . import bins
from .facts import Dims
from .queries import (
    DURATION_METRICS,
    Duration,
    Filters,
    Period,
    ReaderScope,
    assemble,
    assemble_heatmap,
)

_STATUS = (
    "conversation.created",
    "conversation.reopened",
    "conversation.snoozed",
    "conversation.resolved",
    "conversation.rated",
)


def _dims(payload, agent, role_key, role_now):
    snap = payload.get("conversation") or {}
    roles = payload.get("roles") or {}
    role = roles[role_key] if role_key in roles else role_now(agent) if agent else None
    return Dims(
        snap.get("team_id") or 0,
        snap.get("channel_id") or 0,
        agent or 0,
        (role or 0) if agent else 0,
        snap.get("priority") or 0,
    )


def raw_facts(company_id: int) -> list[tuple]:
    """Every fact of the company's non-deleted conversations: (kind, at, conversation, contact, dims, value)."""
    roles_now = dict(Employee.objects.filter(company_id=company_id).values_list("pk", "role_id"))
    role_now = roles_now.get
    conversations = dict(
        Conversation.objects.filter(company_id=company_id, deleted_at__isnull=True).values_list("pk", "contact_id")
    )
    created_events = {}
    timeline = defaultdict(list)  # conversation -> [(at, order, kind, payload, actor)]
    for ev in Event.objects.filter(company_id=company_id, conversation_id__in=list(conversations)).order_by("pk"):
        if ev.type == "message.created":
            created_events[(ev.payload.get("message") or {}).get("id")] = ev
        elif ev.type in _STATUS:
            timeline[ev.conversation_id].append((ev.created_at, ev.pk, ev.type, ev.payload, ev.actor_id))
    for m in Message.objects.filter(conversation_id__in=list(conversations), while_blocked=False).order_by("pk"):
        customer = m.direction == Direction.INBOUND and m.kind == MessageKind.MESSAGE
        human = (
            m.direction == Direction.OUTBOUND
            and m.kind == MessageKind.MESSAGE
            and not m.automatic
            and m.author_employee_id is not None
        )
        ev = created_events.get(m.pk)
        if not (customer or human) or ev is None:
            continue
        timeline[m.conversation_id].append(
            (m.created_at, ev.pk, "customer" if customer else "human", ev.payload, m.author_employee_id)
        )
    out = []
    for conv, items in timeline.items():
        contact = conversations[conv]
        items.sort(key=lambda item: (item[0], item[1]))
        first_customer = None
        responded = False
        waiting = None
        first_resolved_seen = False
        last_res = None
        for at, _order, kind, payload, actor in items:
            assignee = (payload.get("conversation") or {}).get("assignee_id")
            by_assignee = _dims(payload, assignee, "assignee", role_now)
            if kind == "customer":
                out.append(("customer_message", at, conv, contact, by_assignee, None))
                out.append(("active", at, conv, contact, by_assignee, None))
                first_customer = first_customer or at
                waiting = waiting or at
            elif kind == "human":
                by_author = _dims(payload, actor, "actor", role_now)
                out.append(("reply", at, conv, contact, by_author, None))
                out.append(("active", at, conv, contact, by_author, None))
                if first_customer and not responded:
                    responded = True
                    out.append(("first_response", at, conv, contact, by_author, (at - first_customer).total_seconds()))
                if waiting:
                    out.append(("reply_time", at, conv, contact, by_author, (at - waiting).total_seconds()))
                    waiting = None
            elif kind == "conversation.created":
                out.append(("new", at, conv, contact, by_assignee, None))
            elif kind == "conversation.reopened":
                out.append(("reopened", at, conv, contact, by_assignee, None))
            elif kind == "conversation.snoozed":
                out.append(("snoozed", at, conv, contact, _dims(payload, actor, "actor", role_now), None))
            elif kind == "conversation.rated":
                rating = payload.get("rating")
                if isinstance(rating, int) and 1 <= rating <= 5:
                    out.append(("rating", at, conv, contact, by_assignee, float(rating)))
            elif kind == "conversation.resolved":
                by_actor = _dims(payload, actor, "actor", role_now)
                out.append(("resolved", at, conv, contact, by_actor, None))
                waiting = None
                if first_customer:
                    value = (at - first_customer).total_seconds()
                    if not first_resolved_seen:
                        out.append(("resolution_first", at, conv, contact, by_actor, value))
                    last_res = ("resolution_last", at, conv, contact, by_actor, value)
                first_resolved_seen = True
        if last_res:
            out.append(last_res)
    return out


class RawSource:
    """Figures from raw facts. ``binned``: report percentiles as the rollups' bins would (tests)."""

    def __init__(self, scope: ReaderScope, filters: Filters, *, binned: bool = False, facts=None):
        self.scope, self.filters, self.binned = scope, filters, binned
        self.facts = facts if facts is not None else raw_facts(scope.company_id)
        self._places = {}

    def _place(self, at: datetime, tz: str):
        import zoneinfo

        key = (at, tz)
        if key not in self._places:
            local = at.astimezone(zoneinfo.ZoneInfo(tz))
            hour = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
            self._places[key] = (local.date(), local.hour, local.weekday(), hour)
        return self._places[key]

    def _in(self, period: Period):
        for f in self.facts:
            day, hour, weekday, instant = self._place(f[1], period.tz)
            if period.first <= day <= period.last and self.scope.matches(f[4]) and self.filters.matches(f[4]):
                yield (
                    f,
                    {
                        "local_day": day,
                        "local_hour": hour,
                        "weekday": weekday,
                        "instant": instant,
                        "agent": f[4].agent,
                        "team": f[4].team,
                        "channel": f[4].channel,
                        None: None,
                    },
                )

    def sums(self, period: Period, group: str | None) -> dict:
        names = {
            "new": "new",
            "reopened": "reopened",
            "resolved": "resolved",
            "snoozed": "snoozed",
            "customer_message": "customer_messages",
            "reply": "replies",
        }
        out: dict = defaultdict(lambda: defaultdict(float))
        for f, where in self._in(period):
            row = out[where[group]]
            if f[0] in names:
                row[names[f[0]]] += 1
            elif f[0] in DURATION_METRICS:
                row[f"{f[0]}_n"] += 1
                row[f"{f[0]}_sum"] += f[5]
            elif f[0] == "rating":
                row["ratings"] += 1
                row["ratings_good"] += f[5] >= 4
        return {k: dict(v) for k, v in out.items()}

    def durations(self, period: Period, metric: str, group: str | None) -> dict:
        values: dict = defaultdict(list)
        for f, where in self._in(period):
            if f[0] == metric:
                values[where[group]].append(f[5])
        out = {}
        for key, vals in values.items():
            med, p90 = bins.exact_percentile(vals, 0.5), bins.exact_percentile(vals, 0.9)
            if self.binned:
                med, p90 = bins.representative(bins.bin_of(med)), bins.representative(bins.bin_of(p90))
            out[key] = Duration(len(vals), med, p90, sum(vals) / len(vals))
        return out

    def contacts(self, period: Period) -> int:
        return len({f[3] for f, _ in self._in(period) if f[0] == "customer_message"})

    def heatmap_counts(self, period: Period, metric: str) -> dict:
        kind = {"new_conversations": "new", "customer_messages": "customer_message", "active_conversations": "active"}[
            metric
        ]
        out: dict = defaultdict(int)
        if kind == "active":
            seen = set()
            for f, w in self._in(period):
                if f[0] == "active" and (f[2], w["instant"]) not in seen:
                    seen.add((f[2], w["instant"]))
                    out[(w["weekday"], w["local_hour"])] += 1
            return dict(out)
        for f, w in self._in(period):
            if f[0] == kind:
                out[(w["weekday"], w["local_hour"])] += 1
        return dict(out)

    def cell_conversation_ids(self, period: Period, metric: str, weekday: int, hour: int) -> set[int]:
        kind = {"new_conversations": "new", "customer_messages": "customer_message", "active_conversations": "active"}[
            metric
        ]
        return {
            f[2] for f, w in self._in(period) if f[0] == kind and w["weekday"] == weekday and w["local_hour"] == hour
        }


def dashboard(reader: Employee, period: Period, filters: Filters | None = None, *, binned: bool = False):
    filters = filters or Filters()
    return assemble(RawSource(ReaderScope.of(reader), filters, binned=binned), reader, period, filters)


def heatmap(reader: Employee, period: Period, filters: Filters | None, metric: str, mode: str = "total"):
    return assemble_heatmap(RawSource(ReaderScope.of(reader), filters or Filters()), period, metric, mode)
