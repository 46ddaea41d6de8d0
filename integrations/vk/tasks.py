"""The worker's side of VK: the Bots Long Poll of every enabled Long Poll channel.

Short runs, not an endless loop: ``poll_vk`` polls one channel for ``VK_POLL_RUN_SECONDS``
and queues itself again, so a deploy or a worker restart never has to kill a task mid-poll
for long, and a changed setting (disabled, switched to the Callback API, a new token) is
seen at the next run. The beat entry ``start_vk_polls`` (every 30 s) queues a run for each
channel whose lease is free: a lost task or a dead worker costs at most a lease's length;
a run queued twice finds the lease taken and leaves at once.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from . import longpoll


@shared_task(ignore_result=True)
def poll_vk(channel_id: int) -> str:
    outcome = longpoll.poll(channel_id)
    if outcome == "done":
        queue_poll(channel_id)
    return outcome


def queue_poll(channel_id: int) -> None:
    # Its own queue if VK_POLL_QUEUE says so: a long poll holds a worker process for its run,
    # so a busy install gives polls their own workers and deliveries never wait behind them.
    poll_vk.apply_async((channel_id,), queue=settings.VK_POLL_QUEUE)


@shared_task(ignore_result=True)
def start_vk_polls() -> int:
    free = Q(vk_longpoll__isnull=True) | Q(vk_longpoll__lease_until__isnull=True)
    free |= Q(vk_longpoll__lease_until__lt=timezone.now())
    ids = list(longpoll.polled_channels().filter(free).values_list("pk", flat=True))
    for channel_id in ids:
        queue_poll(channel_id)
    return len(ids)
