"""Rollups: aggregates kept from the event log, read by the dashboard (docs/metrics.md).

Dimensions are plain integers (0 = none), not foreign keys: a rollup is a projection of the
event log and is rebuilt from it by ``manage.py recount_statistics``.
"""

from __future__ import annotations

from django.db import models

DIMS = ("team", "channel", "agent", "role", "priority")


class _Dims(models.Model):
    """The dimensions a rollup row is credited to (DIMS; 0 = none)."""

    team = models.IntegerField(default=0)
    channel = models.IntegerField(default=0)
    agent = models.IntegerField(default=0)
    role = models.IntegerField(default=0)
    priority = models.SmallIntegerField(default=0)

    class Meta:
        abstract = True


class _Keyed(_Dims):
    company_id = models.IntegerField()
    # The instant the local hour starts (in the company's time zone), and its local wall clock.
    at = models.DateTimeField()
    local_day = models.DateField()
    local_hour = models.PositiveSmallIntegerField()
    weekday = models.PositiveSmallIntegerField()  # Monday = 0

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.company_id} {self.at:%Y-%m-%d %H:%M}"


class _Counters(models.Model):
    new = models.IntegerField(default=0)
    reopened = models.IntegerField(default=0)
    resolved = models.IntegerField(default=0)
    snoozed = models.IntegerField(default=0)
    customer_messages = models.IntegerField(default=0)
    replies = models.IntegerField(default=0)
    first_response_n = models.IntegerField(default=0)
    first_response_sum = models.FloatField(default=0)
    reply_time_n = models.IntegerField(default=0)
    reply_time_sum = models.FloatField(default=0)
    resolution_first_n = models.IntegerField(default=0)
    resolution_first_sum = models.FloatField(default=0)
    resolution_last_n = models.IntegerField(default=0)
    resolution_last_sum = models.FloatField(default=0)
    ratings = models.IntegerField(default=0)
    ratings_good = models.IntegerField(default=0)

    class Meta:
        abstract = True


class HourlyBucket(_Keyed, _Counters):
    id = models.BigAutoField(primary_key=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company_id", "at", *DIMS], name="reports_bucket_key"),
        ]
        indexes = [models.Index(fields=["company_id", "local_day"], name="reports_bucket_day")]


class DailyBucket(_Dims, _Counters):
    """The hourly buckets summed over each local day (the same dimensions, no hour), written in
    the same statement: a year's tiles, days and workload read ~1/10 of the rows."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    local_day = models.DateField()

    class Meta:
        constraints = [
            # Leads with the day: also the index the period's scan uses.
            models.UniqueConstraint(fields=["company_id", "local_day", *DIMS], name="reports_daily_key"),
        ]

    def __str__(self) -> str:
        return f"day {self.local_day} of {self.company_id}"


class DurationBin(_Keyed):
    """How many duration samples of one metric fell in one logarithmic bin (see bins.py)."""

    id = models.BigAutoField(primary_key=True)
    metric = models.PositiveSmallIntegerField()
    bin = models.PositiveSmallIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company_id", "at", *DIMS, "metric", "bin"], name="reports_bin_key"),
        ]
        indexes = [models.Index(fields=["company_id", "metric", "local_day"], name="reports_bin_day")]


class DailyBin(_Dims):
    """The duration bins summed over each local day (no hour), written with them."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    metric = models.PositiveSmallIntegerField()
    local_day = models.DateField()
    bin = models.PositiveSmallIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # Leads with the metric and the day: also the index the period's scan uses.
            models.UniqueConstraint(
                fields=["company_id", "metric", "local_day", *DIMS, "bin"], name="reports_dailybin_key"
            ),
        ]

    def __str__(self) -> str:
        return f"day {self.local_day} of {self.company_id}, metric {self.metric} bin {self.bin}"


class Touch(_Keyed):
    """A conversation touched in a local hour (by a customer message, by activity, by being new),
    once per distinct credit: distinct contacts, active conversations and the heatmap's lists."""

    id = models.BigAutoField(primary_key=True)
    kind = models.PositiveSmallIntegerField()
    conversation_id = models.BigIntegerField()
    contact_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation_id", "kind", "at", *DIMS], name="reports_touch_key"),
        ]
        indexes = [
            models.Index(fields=["company_id", "kind", "local_day"], name="reports_touch_day"),
        ]


class ConversationStats(models.Model):
    """Per conversation: the fold's running state, and whether its facts are in the rollups."""

    conversation_id = models.BigIntegerField(primary_key=True)
    company_id = models.IntegerField()
    state = models.JSONField(default=dict)
    deleted = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["company_id"], name="reports_stats_company")]

    def __str__(self) -> str:
        return f"stats of #{self.conversation_id}"


class ContactDay(_Dims):
    """How many customer messages one contact sent on one local day, per credit: the distinct
    contacts tile counts distinct ``contact_id`` here. One row per contact and day (not per
    conversation and hour, as in Touch), read by an index-only scan of its key (short periods)
    or of the (company, contact, day) index in contact order (long ones); rows whose count falls
    to 0 (a deleted conversation) are removed, so every row counts."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    local_day = models.DateField()
    contact_id = models.BigIntegerField()
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [
            # The key leads with the day: it is also the index the distinct count scans.
            models.UniqueConstraint(
                fields=["company_id", "local_day", "contact_id", *DIMS], name="reports_contactday_key"
            ),
        ]
        indexes = [
            # For long periods: the distinct contacts in contact order, no hashing (RollupSource.contacts).
            models.Index(fields=["company_id", "contact_id", "local_day"], name="reports_contactday_contact"),
            # For scoped readers (agent = me, or team IN mine): only their rows, index-only for an
            # agent (a year, assigned: ~50k entries instead of a scan of the company's 1.1M).
            models.Index(fields=["company_id", "agent", "local_day", "contact_id"], name="reports_contactday_agent"),
            models.Index(fields=["company_id", "team", "local_day", "contact_id"], name="reports_contactday_team"),
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} on {self.local_day}"


class ContactLast(models.Model):
    """Per contact: the last local day it sent a customer message (over every dimension). While
    no contact of the company is active after a period's last day (a period ending today), the
    period's distinct contacts are those whose last day is on or after its first day: a count of
    an index range, no deduplication of every contact day (RollupSource.contacts). Raised by
    each customer message (``GREATEST``), recomputed from the contact days when a deletion
    removes some, rebuilt by the recount."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    contact_id = models.BigIntegerField()
    last_day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company_id", "contact_id"], name="reports_contactlast_key"),
        ]
        indexes = [models.Index(fields=["company_id", "last_day"], name="reports_contactlast_day")]

    def __str__(self) -> str:
        return f"contact {self.contact_id} last on {self.last_day}"


class ContactLastTeam(models.Model):
    """ContactLast per credited team (none: not kept): a teams reader's contacts of a period
    ending today are its teams' last days, and its own (ContactLastAgent) not among them."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    team = models.IntegerField()
    contact_id = models.BigIntegerField()
    last_day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company_id", "team", "contact_id"], name="reports_contactlastteam_key"),
        ]
        # With the contact: the team's contacts since a day are an index-only range (the
        # anti-join of a teams reader's own contacts hashes them without reading the table).
        indexes = [
            models.Index(
                fields=["company_id", "team", "last_day"], include=["contact_id"], name="reports_contactlastteam_day"
            )
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} last on {self.last_day} for team {self.team}"


class ContactLastAgent(models.Model):
    """ContactLast per credited agent and team (unassigned: not kept). With the team, a teams
    reader's own contacts outside its teams are a filter of its range (usually none are), and
    only those are looked up among its teams' contacts."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    agent = models.IntegerField()
    team = models.IntegerField()
    contact_id = models.BigIntegerField()
    last_day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company_id", "agent", "team", "contact_id"], name="reports_contactlastagent_key"
            ),
        ]
        indexes = [
            models.Index(
                fields=["company_id", "agent", "last_day"],
                include=["team", "contact_id"],
                name="reports_contactlastagent_day",
            )
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} last on {self.last_day} for agent {self.agent} in team {self.team}"


class RollupZone(models.Model):
    """The time zone a company's rollups were last counted in (buckets are local hours).

    When it differs from the company's zone, the figures are being recounted (rollups.recounting).
    """

    company_id = models.IntegerField(primary_key=True)
    timezone = models.CharField(max_length=64)
    recounted_at = models.DateTimeField(null=True, blank=True)
    # Set when a recount is asked for (a change of zone), cleared by the recount that follows.
    requested_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollups of {self.company_id} in {self.timezone}"


class RollupPosition(models.Model):
    """How far into the event log the rollups are kept (applier.py): one row, written in the
    same transaction as the rollups it moves past. On PostgreSQL a snapshot (events.tail), on
    SQLite the last event id. No row: nothing applied yet, the log is read from its start."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    position = models.TextField()
    applied_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollups kept up to {self.position}"


# --- Company-wide: the same sums without dimensions, for the unfiltered "all" view ---------------
# An admin's dashboard without filters sums every row of a period; at a year of 1M conversations
# that is ~1M hourly histogram rows. These hold what those reads need per company only (the
# dimensions summed away), written in the same statement as the rows they sum.


class CompanyHour(_Counters):
    """The hourly buckets of a company summed over every dimension: by hour of day, and the
    heatmap's counts, for a reader who sees everything and filters nothing."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    at = models.DateTimeField()
    local_day = models.DateField()
    local_hour = models.PositiveSmallIntegerField()
    weekday = models.PositiveSmallIntegerField()

    class Meta:
        # The day (determined by the hour) leads after the company: the key is the period's index too.
        constraints = [
            models.UniqueConstraint(fields=["company_id", "local_day", "at"], name="reports_companyhour_key")
        ]

    def __str__(self) -> str:
        return f"{self.company_id} {self.at:%Y-%m-%d %H:%M}"


class CompanyDayBin(models.Model):
    """The daily bins of a company summed over every dimension: every metric's histogram."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    metric = models.PositiveSmallIntegerField()
    local_day = models.DateField()
    bin = models.PositiveSmallIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company_id", "metric", "local_day", "bin"], name="reports_cdaybin_key")
        ]

    def __str__(self) -> str:
        return f"day {self.local_day} of {self.company_id}, metric {self.metric} bin {self.bin}"


class CompanyHourBin(models.Model):
    """The hourly bins of a company summed over every dimension: histograms by hour of day."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    metric = models.PositiveSmallIntegerField()
    at = models.DateTimeField()
    local_day = models.DateField()
    local_hour = models.PositiveSmallIntegerField()
    bin = models.PositiveSmallIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company_id", "metric", "local_day", "at", "bin"], name="reports_chourbin_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.company_id} {self.at:%Y-%m-%d %H:%M}, metric {self.metric} bin {self.bin}"


# --- Month grain: long periods read whole local months, and only their edge days finer ----------
# A year of a scoped reader's first responses by hour is ~1.3M hourly bin rows; the same sums per
# local month (the first of the month, in the company's zone) are a fraction. Written in the same
# statement as the rows they sum, rebuilt by the recount (also on a change of zone), filled by
# migration 0010 from the kept rollups. See RollupSource.prefetch for the reading plan.


class MonthHourBucket(_Dims, _Counters):
    """The hourly buckets summed per local month and local hour of day (the same dimensions):
    by hour of day for whole months."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    month = models.DateField()  # the first day of the local month
    local_hour = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company_id", "month", "local_hour", *DIMS], name="reports_monthhour_key"),
        ]
        # A scoped reader (agent = me, or team IN mine) reads only its rows: a BitmapOr of two
        # ranges, not every row of the months filtered (a teams reader's year: ~10 -> ~3 ms).
        indexes = [
            models.Index(fields=["company_id", "team", "month"], name="reports_monthhour_team"),
            models.Index(fields=["company_id", "agent", "month"], name="reports_monthhour_agent"),
        ]

    def __str__(self) -> str:
        return f"month {self.month:%Y-%m} hour {self.local_hour} of {self.company_id}"


class MonthBin(_Dims):
    """The daily bins summed per local month: every metric's histogram, the workload's first
    response, for whole months."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    metric = models.PositiveSmallIntegerField()
    month = models.DateField()
    bin = models.PositiveSmallIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company_id", "metric", "month", *DIMS, "bin"], name="reports_monthbin_key"
            ),
        ]

    def __str__(self) -> str:
        return f"month {self.month:%Y-%m} of {self.company_id}, metric {self.metric} bin {self.bin}"


class MonthHourBin(_Dims):
    """The hourly bins summed per local month and local hour of day: a metric's histogram by hour
    of day, for whole months."""

    id = models.BigAutoField(primary_key=True)
    company_id = models.IntegerField()
    metric = models.PositiveSmallIntegerField()
    month = models.DateField()
    local_hour = models.PositiveSmallIntegerField()
    bin = models.PositiveSmallIntegerField()
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["company_id", "metric", "month", "local_hour", *DIMS, "bin"], name="reports_monthhourbin_key"
            ),
        ]
        # As MonthHourBucket's: a teams reader's year of first responses by hour reads its ~28,000
        # rows, not the company's ~110,000 filtered (~56 -> ~20 ms on the loaded bench machine).
        indexes = [
            models.Index(fields=["company_id", "metric", "team", "month"], name="reports_monthhourbin_team"),
            models.Index(fields=["company_id", "metric", "agent", "month"], name="reports_monthhourbin_agent"),
        ]

    def __str__(self) -> str:
        return f"month {self.month:%Y-%m} hour {self.local_hour} of {self.company_id}, metric {self.metric}"


# Every table the rollups keep from the event log, per company: what a recount empties and
# rebuilds (rollups.recount) and what the tests compare with a recount. A new rollup table
# goes here, or a recount would add to its old rows (tests/test_reports_rollups.py checks
# that every company-keyed table of this app but the two below is listed).
ROLLUP_MODELS = (
    HourlyBucket,
    DailyBucket,
    DurationBin,
    DailyBin,
    Touch,
    ContactDay,
    ContactLast,
    ContactLastTeam,
    ContactLastAgent,
    CompanyHour,
    CompanyDayBin,
    CompanyHourBin,
    MonthHourBucket,
    MonthBin,
    MonthHourBin,
)
