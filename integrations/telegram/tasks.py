"""The Celery side of polling mode: beat starts a short poll for every due channel."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from . import polling


@shared_task(ignore_result=True)
def poll_telegram_channels() -> int:
    """Beat, every few seconds: queue one poll for each polling channel with none running or queued."""
    claimed = polling.claim_due_channels()
    for channel_id, holder in claimed:
        poll_telegram.apply_async((channel_id, holder), queue=settings.TELEGRAM_POLL_QUEUE)
    return len(claimed)


@shared_task(ignore_result=True, acks_late=False)
def poll_telegram(channel_id: int, holder: str | None = None) -> int | None:
    """One getUpdates long poll (at most TELEGRAM_POLL_TIMEOUT seconds) under the channel's lease."""
    return polling.poll(channel_id, holder=holder)
