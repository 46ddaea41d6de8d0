"""The product's source of figures: SQL over the rollups (never over messages)."""

from __future__ import annotations

from django.db.models import Sum

from . import bins
from .facts import METRIC_CODE, TOUCH_CODE
from .models import ContactDay, DurationBin, HourlyBucket, Touch
from .queries import Duration, Filters, Period, ReaderScope

SUMMED = (
    "new",
    "reopened",
    "resolved",
    "snoozed",
    "customer_messages",
    "replies",
    "ratings",
    "ratings_good",
    *(
        f"{m}_{x}"
        for m in ("first_response", "reply_time", "resolution_first", "resolution_last")
        for x in ("n", "sum")
    ),
)
HEATMAP_TOUCH = {"new_conversations": "new", "customer_messages": "customer_message", "active_conversations": "active"}


class RollupSource:
    def __init__(self, scope: ReaderScope, filters: Filters):
        self.scope, self.filters = scope, filters

    def _rows(self, model, period: Period):
        return model.objects.filter(
            self.scope.q(),
            self.filters.q(),
            company_id=self.scope.company_id,
            local_day__range=(period.first, period.last),
        )

    def sums(self, period: Period, group: str | None) -> dict:
        aggregates = {name: Sum(name) for name in SUMMED}
        if group is None:
            row = self._rows(HourlyBucket, period).aggregate(**aggregates)
            return {None: {k: v or 0 for k, v in row.items()}}
        return {
            row[group]: {k: row[k] or 0 for k in SUMMED}
            for row in self._rows(HourlyBucket, period).values(group).annotate(**aggregates)
        }

    def durations(self, period: Period, metric: str, group: str | None) -> dict:
        code = METRIC_CODE[metric]
        keys = [group] if group else []
        histo: dict = {}
        for row in self._rows(DurationBin, period).filter(metric=code).values(*keys, "bin").annotate(n=Sum("count")):
            histo.setdefault(row[group] if group else None, []).append((row["bin"], row["n"]))
        totals = (
            {
                (row[group] if group else None): row
                for row in self._rows(HourlyBucket, period)
                .values(*keys)
                .annotate(n=Sum(f"{metric}_n"), s=Sum(f"{metric}_sum"))
            }
            if group
            else {None: self._rows(HourlyBucket, period).aggregate(n=Sum(f"{metric}_n"), s=Sum(f"{metric}_sum"))}
        )
        out = {}
        for key, pairs in histo.items():
            total = totals.get(key) or {}
            n = total.get("n") or 0
            if n <= 0:
                continue
            out[key] = Duration(
                n,
                bins.percentile_from_bins(pairs, 0.5),
                bins.percentile_from_bins(pairs, 0.9),
                (total.get("s") or 0) / n,
            )
        return out

    def contacts(self, period: Period) -> int:
        # SELECT count(*) FROM (SELECT DISTINCT contact_id ...): an index-only scan of the key.
        return self._rows(ContactDay, period).values("contact_id").distinct().count()

    def heatmap_counts(self, period: Period, metric: str) -> dict:
        kind = TOUCH_CODE[HEATMAP_TOUCH[metric]]
        qs = self._rows(Touch, period).filter(kind=kind)
        if metric == "customer_messages":
            qs = self._rows(HourlyBucket, period)
            return {
                (r["weekday"], r["local_hour"]): r["n"]
                for r in qs.values("weekday", "local_hour").annotate(n=Sum("customer_messages"))
                if r["n"]
            }
        if metric == "new_conversations":
            qs = self._rows(HourlyBucket, period)
            return {
                (r["weekday"], r["local_hour"]): r["n"]
                for r in qs.values("weekday", "local_hour").annotate(n=Sum("new"))
                if r["n"]
            }
        # Active: distinct (conversation, hour) pairs, whatever credits they carry.
        pairs = qs.values_list("weekday", "local_hour", "conversation_id", "at").distinct()
        out: dict = {}
        for weekday, hour, _conversation, _at in pairs:
            out[(weekday, hour)] = out.get((weekday, hour), 0) + 1
        return out


def cell_conversation_ids(scope: ReaderScope, filters: Filters, period: Period, metric: str, weekday: int, hour: int):
    kind = TOUCH_CODE[HEATMAP_TOUCH[metric]]
    return (
        Touch.objects.filter(
            scope.q(),
            filters.q(),
            company_id=scope.company_id,
            kind=kind,
            weekday=weekday,
            local_hour=hour,
            local_day__range=(period.first, period.last),
        )
        .values("conversation_id")
        .distinct()
    )
