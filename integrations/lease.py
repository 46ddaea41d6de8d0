"""At most one poller per channel across all workers: a lease on a row, taken by compare-and-swap.

A channel's poller (Telegram's getUpdates, VK's Bots Long Poll) must never run twice at once:
Telegram answers 409 to a second getUpdates, and two VK pollers would store every event twice
before the unique constraint caught it. Each poll task first ``take``s the lease on its
channel's state row; the ``UPDATE … WHERE`` succeeds for exactly one holder, on PostgreSQL and
SQLite alike. A holder renews it while it works and gives it back when it stops; a worker that
died simply lets it run out (``seconds``), and the next poll takes it over.

The model needs two fields: ``lease_holder = CharField(max_length=64, blank=True)`` and
``lease_until = DateTimeField(null=True, blank=True)``.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone


def new_holder() -> str:
    """A name for this poll run: host, process and a random part (two runs never share one)."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def take(model: type[models.Model], pk: int, *, holder: str, seconds: float) -> bool:
    """Take or renew the lease on row ``pk`` for ``seconds``; False while someone else holds it."""
    now = timezone.now()
    free = Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_holder=holder)
    return bool(
        model.objects.filter(free, pk=pk).update(lease_holder=holder, lease_until=now + timedelta(seconds=seconds))
    )


def give_back(model: type[models.Model], pk: int, *, holder: str) -> None:
    """Release the lease if this holder still has it (a lease already taken over is left alone)."""
    model.objects.filter(pk=pk, lease_holder=holder).update(lease_holder="", lease_until=None)
