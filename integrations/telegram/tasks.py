"""The Celery side of polling mode: beat starts a short poll for every due channel."""

from __future__ import annotations

from celery import shared_task

from . import polling


@shared_task(ignore_result=True)
def poll_telegram_channels() -> int:
    """Beat, every few seconds: queue one poll for each polling channel with none running."""
    ids = polling.due_channel_ids()
    for channel_id in ids:
        poll_telegram.delay(channel_id)
    return len(ids)


@shared_task(ignore_result=True, acks_late=False)
def poll_telegram(channel_id: int) -> int | None:
    """One getUpdates long poll (at most TELEGRAM_POLL_TIMEOUT seconds) under the channel's lease."""
    return polling.poll(channel_id)
