"""Who is reachable right now: presence plus a heartbeat from an open inbox tab.

Reads only; presence changes are written by ``accounts.actions`` (set_presence,
presence_from_inbox, mark_away_if_idle), each recorded as a ``PresenceChange``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .models import Employee, Presence
from .permissions import Perm


def fresh_since() -> datetime:
    """Heartbeats older than this no longer count: the tab is gone."""
    return timezone.now() - timedelta(seconds=settings.PRESENCE_TIMEOUT_SECONDS)


def shown_presence(employee: Employee) -> str:
    """What colleagues see: "online" turns "away" once no inbox tab has sent a heartbeat lately."""
    if employee.presence != Presence.ONLINE:
        return employee.presence
    return Presence.ONLINE if employee.last_seen_at and employee.last_seen_at >= fresh_since() else Presence.AWAY


def heartbeat(employee_id: int) -> bool:
    """An inbox tab is open: refresh last_seen_at. True when the employee is online already."""
    return employee_id in heartbeats({employee_id})


def heartbeats(employee_ids: Collection[int]) -> set[int]:
    """Inbox tabs are open: refresh their employees' last_seen_at; the ids of those online already.

    The common case (all online) is one UPDATE. The rows it wrote are the ones now carrying
    its timestamp; anyone else is refreshed too, and the caller decides whether the open tab
    brings them back (see actions.presence_from_inbox).
    """
    ids = set(employee_ids)
    now = timezone.now()
    if Employee.objects.filter(pk__in=ids, presence=Presence.ONLINE).update(last_seen_at=now) == len(ids):
        return ids
    online = set(Employee.objects.filter(pk__in=ids, last_seen_at=now).values_list("pk", flat=True))
    Employee.objects.filter(pk__in=ids - online).update(last_seen_at=now)
    return online


def online_agents(company_id: int, *, team_id: int | None = None) -> list[Employee]:
    """Active employees who may answer customers, marked online, with an inbox tab open lately.

    ``team_id`` narrows them to that team's members; without it, the whole company. One
    query: the role's permissions are a JSON list, checked here rather than in SQL (SQLite
    has no JSON containment).
    """
    qs = Employee.objects.select_related("role").filter(
        company_id=company_id, is_active=True, presence=Presence.ONLINE, last_seen_at__gte=fresh_since()
    )
    if team_id:
        qs = qs.filter(teams=team_id)
    return [employee for employee in qs.order_by("pk") if employee.role.allows(Perm.REPLY)]


def team_online(company_id: int, team_id: int | None = None) -> bool:
    """What the widget shows: someone who can answer is online ("away" and "offline" are not)."""
    return bool(online_agents(company_id, team_id=team_id))


def presence_map(company_id: int) -> dict[int, str]:
    """Every active colleague's shown presence, for the inbox's pickers."""
    rows = Employee.objects.filter(company_id=company_id, is_active=True).only("pk", "presence", "last_seen_at")
    return {employee.pk: shown_presence(employee) for employee in rows}
