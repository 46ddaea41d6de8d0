"""Scheduled work on employees."""

from __future__ import annotations

from celery import shared_task
from django.db.models import Q

from . import actions
from .models import Employee, Presence
from .presence import fresh_since


@shared_task
def mark_idle_employees_away() -> int:
    """Online employees whose inbox has sent no heartbeat for PRESENCE_TIMEOUT_SECONDS become away."""
    idle = Employee.objects.filter(presence=Presence.ONLINE).filter(
        Q(last_seen_at__lt=fresh_since()) | Q(last_seen_at__isnull=True)
    )
    return sum(actions.mark_away_if_idle(pk) for pk in list(idle.values_list("pk", flat=True)[:1000]))
