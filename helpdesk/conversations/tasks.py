"""Scheduled work on conversations."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import actions, routing
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


@shared_task
def hand_out_queued_conversations() -> int:
    """The safety net under the triggers: hand out queues wherever an agent has room.

    Hand-outs happen the moment room appears (an agent comes online, resolves or snoozes, is
    given more capacity); this sweep catches what a trigger could not take, e.g. a queued
    conversation another transaction was holding at that moment.
    """
    companies = routing.queue_companies()
    return sum(len(actions.hand_out(company_id)) for company_id in companies)
