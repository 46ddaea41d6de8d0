"""Who is reachable right now: presence plus a heartbeat from an open inbox tab."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import Employee, Presence


def shown_presence(employee: Employee) -> str:
    """What colleagues see: "online" turns "away" once no inbox tab has sent a heartbeat lately."""
    if employee.presence != Presence.ONLINE:
        return employee.presence
    fresh = timezone.now() - timedelta(seconds=settings.PRESENCE_TIMEOUT_SECONDS)
    return Presence.ONLINE if employee.last_seen_at and employee.last_seen_at >= fresh else Presence.AWAY


def heartbeat(employee_id: int) -> None:
    """An inbox tab is open: refresh last_seen_at; an offline employee becomes online."""
    now = timezone.now()
    Employee.objects.filter(pk=employee_id).update(last_seen_at=now)
    Employee.objects.filter(pk=employee_id, presence=Presence.OFFLINE).update(presence=Presence.ONLINE)


def team_online(company_id: int) -> bool:
    """True while at least one active employee is online with a recent heartbeat."""
    fresh = timezone.now() - timedelta(seconds=settings.PRESENCE_TIMEOUT_SECONDS)
    return Employee.objects.filter(
        company_id=company_id, is_active=True, presence=Presence.ONLINE, last_seen_at__gte=fresh
    ).exists()
