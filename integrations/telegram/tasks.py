"""The Celery side of polling mode: bounded poll runs that hand over to each other.

``poll_telegram`` polls one channel for ``TELEGRAM_POLL_RUN_SECONDS`` (getUpdates after
getUpdates, integrations/telegram/polling.py) and, when its time ran out with the channel still
due, leases and queues the next run at once, so the channel is never left unpolled between two
beat ticks. Short runs rather than an endless loop: a deploy or a worker restart never waits
long for a poll to end, and a changed setting is seen at the next run at the latest. The beat
entry ``poll-telegram`` (every 5 s) starts a run for every due channel with none running or
queued: a channel back from its backoff, a new one, one whose run or worker was lost (after
its lease runs out). On the worker's shutdown, waiting long polls are cancelled.
"""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_shutting_down
from django.conf import settings

from . import client, polling


@shared_task(ignore_result=True)
def poll_telegram_channels() -> int:
    """Beat, every few seconds: queue a run for each polling channel with none running or queued."""
    claimed = polling.claim_due_channels()
    for channel_id, holder in claimed:
        queue_poll(channel_id, holder)
    return len(claimed)


def queue_poll(channel_id: int, holder: str) -> None:
    poll_telegram.apply_async((channel_id, holder), queue=settings.TELEGRAM_POLL_QUEUE)


@shared_task(ignore_result=True, acks_late=False)
def poll_telegram(channel_id: int, holder: str | None = None) -> int | None:
    """One poll run (about TELEGRAM_POLL_RUN_SECONDS) under the channel's lease, then the next."""
    handled = polling.poll(channel_id, holder=holder)
    if handled is not None and not client.stopping.is_set():
        following = polling.claim(channel_id)  # None: stopped, backing off, or no longer polling
        if following:
            queue_poll(channel_id, following)
    return handled


@worker_shutting_down.connect
def _end_long_polls(**kwargs) -> None:
    client.interrupt()
