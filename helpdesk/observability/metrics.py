"""The product's own metrics, and the one-line calls that move them (docs/operations.md).

Callers say what happened (``socket_opened("inbox")``, ``event_published(event)``); this
module alone knows metric names and labels. Every call is cheap (an in-memory or memory-mapped
add) and never raises: a broken counter must not break a message.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone
from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

SOCKETS_OPEN = Gauge(
    "smartchat_sockets_open",
    "Websockets open now, by kind (inbox, widget, reports).",
    ["kind"],
    multiprocess_mode="livesum",
)
SOCKETS_OPENED = Counter("smartchat_sockets_opened", "Websockets accepted, by kind.", ["kind"])
EVENTS_PUBLISHED = Counter(
    "smartchat_events_published", "Events of the event log fanned out to sockets and delivery, by type.", ["type"]
)
EVENT_LAG = Histogram(
    "smartchat_event_publish_lag_seconds",
    "From an event's row being written to its fan-out (the commit and the wait before publishing).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
EVENT_LAST_PUBLISHED = Gauge(
    "smartchat_event_last_published_timestamp_seconds",
    "When this machine last fanned out an event (Unix time): a stalled relay stops moving it.",
    multiprocess_mode="max",
)
MESSAGES = Counter(
    "smartchat_messages",
    "Customer-visible messages written, by direction (in: from the customer, out: to them) and channel kind.",
    ["direction", "channel_kind"],
)
TASK_FAILURES = Counter("smartchat_celery_task_failures", "Celery tasks that raised, by task name.", ["task"])
TASK_RETRIES = Counter(
    "smartchat_celery_task_retries", "Celery tasks that asked to be retried, by task name.", ["task"]
)


_children: dict[tuple, Any] = {}


def _child(metric, *labels: str):
    """``metric.labels(*labels)``, remembered: labels() validates and locks on every call."""
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def socket_opened(kind: str) -> None:
    """A websocket of this kind was accepted."""
    try:
        _child(SOCKETS_OPEN, kind).inc()
        _child(SOCKETS_OPENED, kind).inc()
    except Exception:  # metrics never break the product
        log.exception("could not count an open socket")


def socket_closed(kind: str) -> None:
    """A websocket counted by ``socket_opened`` closed."""
    try:
        _child(SOCKETS_OPEN, kind).dec()
    except Exception:
        log.exception("could not count a closed socket")


def event_published(event: dict[str, Any]) -> None:
    """One committed event (``events.log.serialise``'s shape) was fanned out here, just now."""
    try:
        now = timezone.now()
        _child(EVENTS_PUBLISHED, event["type"]).inc()
        EVENT_LAG.observe(max(0.0, (now - _when(event["created_at"])).total_seconds()))
        EVENT_LAST_PUBLISHED.set(now.timestamp())
    except Exception:
        log.exception("could not count a published event")


def event_committed(event: dict[str, Any]) -> None:
    """One event was committed: counts what it says happened (a message in or out).

    Called once per event, where it was written, never by every process that relays it.
    """
    try:
        if event["type"] != "message.created":
            return
        message = event["payload"].get("message") or {}
        if message.get("kind") != "message" or message.get("direction") not in ("in", "out"):
            return  # notes and system lines are not messages to or from a customer
        kind = event["payload"]["conversation"].get("channel_kind") or "unknown"
        _child(MESSAGES, message["direction"], kind).inc()
    except Exception:
        log.exception("could not count a committed event")


def task_failed(task_name: str) -> None:
    TASK_FAILURES.labels(task_name or "unknown").inc()


def task_retried(task_name: str) -> None:
    TASK_RETRIES.labels(task_name or "unknown").inc()


def _when(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def declare(*, socket_kinds: tuple[str, ...], channel_kinds: list[str]) -> None:
    """Create the labelled series that are known in advance, at 0."""
    for kind in socket_kinds:
        SOCKETS_OPEN.labels(kind)
        SOCKETS_OPENED.labels(kind)
    for kind in channel_kinds:
        for direction in ("in", "out"):
            MESSAGES.labels(direction, kind)
