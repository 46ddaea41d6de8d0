"""Scheduled work on conversations."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import actions
from .models import Conversation, Status


@shared_task
def wake_due_conversations() -> int:
    """Wake every snoozed conversation whose time has come; the times live in the database."""
    due = Conversation.objects.filter(status=Status.SNOOZED, snoozed_until__lte=timezone.now()).values_list(
        "pk", flat=True
    )
    woken = 0
    for pk in list(due[:500]):
        conversation = Conversation.objects.get(pk=pk)
        if actions.wake(conversation).status == Status.OPEN:
            woken += 1
    return woken
