"""Figures read from the database when Prometheus scrapes: the queues and the delivery outbox.

They describe the whole installation (every company), so they are the same from whichever web
process answers; a count kept in memory could not survive restarts or add up across processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


class DatabaseCollector(Collector):
    """Queue length and longest wait per team (labelled by company), deliveries by status."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        started = time.monotonic()
        up = GaugeMetricFamily(
            "smartchat_database_collector_up", "1 when the scrape-time database figures could be read, else 0."
        )
        try:
            families = [*self._queues(), *self._deliveries()]
        except Exception:  # /metrics answers without them rather than failing
            log.exception("could not read the database figures for /metrics")
            up.add_metric([], 0)
            yield up
            return
        yield from families
        up.add_metric([], 1)
        yield up
        took = GaugeMetricFamily(
            "smartchat_database_collector_seconds", "How long reading the scrape-time database figures took."
        )
        took.add_metric([], time.monotonic() - started)
        yield took

    def _queues(self) -> list[GaugeMetricFamily]:
        from helpdesk.conversations.models import Conversation, Status

        labels = ["company_id", "team_id", "team"]
        waiting = GaugeMetricFamily(
            "smartchat_queue_conversations",
            "Open conversations waiting for an agent (none assigned), by team.",
            labels=labels,
        )
        longest = GaugeMetricFamily(
            "smartchat_queue_longest_wait_seconds",
            "How long the customer waiting longest in the team's queue has waited.",
            labels=labels,
        )
        now = timezone.now()
        rows = (
            Conversation.objects.filter(status=Status.OPEN, assignee__isnull=True, deleted_at__isnull=True)
            .values("company_id", "team_id", "team__name")
            .annotate(n=Count("pk"), oldest=Min("waiting_since"))
            .order_by()
        )
        for row in rows:
            key = [str(row["company_id"]), str(row["team_id"] or 0), row["team__name"] or ""]
            waiting.add_metric(key, row["n"])
            longest.add_metric(key, (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0)
        return [waiting, longest]

    def _deliveries(self) -> list[GaugeMetricFamily]:
        from helpdesk.conversations.models import Delivery, DeliveryStatus

        by_status = GaugeMetricFamily(
            "smartchat_deliveries",
            "Outbound deliveries in the outbox, by status and channel kind.",
            labels=["status", "channel_kind"],
        )
        counts = {
            (row["status"], row["channel__kind"]): row["n"]
            for row in Delivery.objects.values("status", "channel__kind").annotate(n=Count("pk")).order_by()
        }
        kinds = sorted({kind for _status, kind in counts})
        for status in DeliveryStatus.values:
            for kind in kinds:
                by_status.add_metric([status, kind], counts.get((status, kind), 0))
        oldest_due = GaugeMetricFamily(
            "smartchat_deliveries_oldest_due_seconds",
            "How long the queued delivery due longest ago has been due (0: none due): a stalled worker grows it.",
        )
        now = timezone.now()
        due = Delivery.objects.filter(status=DeliveryStatus.QUEUED, next_attempt_at__lte=now).aggregate(
            oldest=Min("next_attempt_at")
        )["oldest"]
        oldest_due.add_metric([], (now - due).total_seconds() if due else 0.0)
        return [by_status, oldest_due]
