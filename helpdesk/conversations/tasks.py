"""Scheduled work on conversations, and outbound delivery."""

from __future__ import annotations

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from . import actions, routing
from .actions.delivery import HOLDS_BACK
from .models import Conversation, Delivery, DeliveryStatus, Status


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


@shared_task(acks_late=True, ignore_result=True)
def deliver(delivery_id: int) -> str | None:
    """Send one delivery (ids in, re-read, idempotent: a replayed task finds nothing to claim)."""
    return actions.send_delivery(delivery_id)


def queue_delivery(delivery_id: int, *, at: datetime | None = None) -> None:
    """Ask a worker to send this delivery, not before ``at``. Called after commit only."""
    eta = at if at is not None and at > timezone.now() else None
    deliver.apply_async((delivery_id,), eta=eta, queue=settings.DELIVERY_QUEUE)


def queue_next_delivery(conversation_id: int) -> None:
    """The conversation's next waiting delivery, now that an earlier one stopped holding it back."""
    waiting = (
        Delivery.objects.filter(conversation_id=conversation_id, status=DeliveryStatus.QUEUED)
        .order_by("pk")
        .values_list("pk", "next_attempt_at")
        .first()
    )
    if waiting:
        queue_delivery(waiting[0], at=waiting[1])


@shared_task(ignore_result=True)
def sweep_deliveries() -> dict[str, int]:
    """The safety net under delivery: lost tasks and claims whose worker died.

    - A queued delivery due for more than ``DELIVERY_SWEEP_AFTER`` seconds whose turn it is
      (nothing earlier in its conversation on its way) lost its task, e.g. to a crash between
      the commit and the queueing: it is queued again. A replay is harmless: the claim is atomic.
    - A claim older than ``DELIVERY_SENDING_TIMEOUT``: see ``actions.expire_stale_claims``.
    """
    now = timezone.now()
    requeued = actions.expire_stale_claims(now=now)
    earlier = Delivery.objects.filter(
        conversation_id=OuterRef("conversation_id"), pk__lt=OuterRef("pk"), status__in=HOLDS_BACK
    )
    lost = list(
        Delivery.objects.filter(
            status=DeliveryStatus.QUEUED, next_attempt_at__lt=now - timedelta(seconds=settings.DELIVERY_SWEEP_AFTER)
        )
        .exclude(Exists(earlier))
        .order_by("pk")
        .values_list("pk", flat=True)[:500]
    )
    for delivery_id in [*requeued, *lost]:
        queue_delivery(delivery_id)
    return {"requeued": len(requeued), "lost": len(lost)}


# --- Customers' files, fetched from their channel (actions/fetching.py) ----------------------


@shared_task(bind=True, acks_late=True, ignore_result=True, max_retries=None)
def fetch_attachment(self, attachment_id: int) -> None:
    """Fetch one pending file (ids in, re-read, idempotent); a retryable failure comes back later."""
    from .actions.fetching import fetch_inbound_file

    wait = fetch_inbound_file(attachment_id, attempt=self.request.retries + 1)
    if wait is not None:
        raise self.retry(countdown=max(float(wait), 0.0))


def queue_fetch(attachment_id: int) -> None:
    """Ask a worker to fetch this file. Called after commit only."""
    fetch_attachment.apply_async((attachment_id,), queue=settings.DELIVERY_QUEUE)


@shared_task(ignore_result=True)
def sweep_attachments() -> dict[str, int]:
    """The safety net under fetching: pending files whose task was lost are queued again."""
    from .actions.fetching import sweep_pending_files

    return sweep_pending_files()
