"""Each figure's name in words (both languages), for the exports and the Reports page.

The keys are those of ``queries.Dashboard.tiles`` (docs/metrics.md defines each figure).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .queries import DURATION_METRICS

COUNTS = {
    "opened": _("Conversations opened"),
    "new": _("New conversations"),
    "reopened": _("Reopened conversations"),
    "resolved": _("Resolved"),
    "snoozed": _("Snoozed"),
    "customer_messages": _("Customer messages"),
    "replies": _("Replies"),
    "ratings": _("Ratings"),
    "contacts": _("Contacts"),
    "unread_now": _("Unread now"),
    "csat": _("CSAT, %"),
}
DURATIONS = {
    "first_response": _("First response time"),
    "reply_time": _("Reply time"),
    "resolution_first": _("Resolution time (first)"),
    "resolution_last": _("Resolution time (last)"),
}
AGGREGATES = {
    "median": _("median, s"),
    "p90": _("p90, s"),
    "average": _("average, s"),
}
HEATMAP_METRICS = {
    "new_conversations": _("New conversations"),
    "customer_messages": _("Customer messages"),
    "active_conversations": _("Active conversations"),
}
HEATMAP_MODES = {"total": _("Total"), "average": _("Average per occurrence")}


def tile(key: str) -> str:
    """A tile's name in the active language: "First response time, median, s" for first_response_median."""
    if key in COUNTS:
        return str(COUNTS[key])
    for metric in DURATION_METRICS:
        aggregate = key.removeprefix(metric + "_")
        if aggregate != key and aggregate in AGGREGATES:
            return f"{DURATIONS[metric]}, {AGGREGATES[aggregate]}"
    return key
