"""Every figure of the rollups equals the direct computation from raw rows (docs/metrics.md)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import pytest

from helpdesk.reports import queries, raw, rollups
from helpdesk.reports.models import (
    ROLLUP_MODELS,
    CompanyDayBin,
    CompanyHour,
    CompanyHourBin,
    ContactDay,
    ContactLast,
    ContactLastAgent,
    ContactLastTeam,
    ConversationStats,
    HourlyBucket,
    MonthBin,
    MonthHourBin,
    MonthHourBucket,
    Touch,
)
from helpdesk.reports.queries import Filters, Period

from .reports_history import build_history


def normal(value):
    """Dataclasses as plain data, floats rounded (SQL and Python add floats in other orders)."""
    if dataclasses.is_dataclass(value):
        return {f.name: normal(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normal(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(float(value), 4)
    return value


HISTORIES = [
    ("Europe/Berlin", datetime(2024, 10, 25, 20, 0), 11),  # fall back: Sunday 27 October, 03:00 -> 02:00
    ("Europe/Berlin", datetime(2025, 3, 29, 22, 0), 12),  # spring forward: Sunday 30 March, 02:00 -> 03:00
    ("America/New_York", datetime(2024, 11, 2, 18, 0), 13),  # fall back: Sunday 3 November
]


@pytest.fixture(params=HISTORIES, ids=lambda h: f"{h[0]}-{h[1]:%m}")
def history(request, db):
    tz, start, seed = request.param
    return build_history(seed=seed, tz=tz, start=start)


def periods(h):
    first = h.start.date()
    last = h.end.date()
    return [
        Period.parse(h.company, start=first, end=last),
        Period.parse(h.company, start=first, end=first),
        Period.parse(h.company, start=last, end=last),
        Period.parse(h.company, "7d", today=last),
        Period.parse(h.company, "30d", today=date(last.year, last.month, last.day)),
        *month_periods(h),
    ]


def month_periods(h):
    """Periods holding whole local months (read from the month grain) and edge days around them:
    starting on a month's first day or mid-month, ending on a month's last day or mid-month."""
    first, last = h.start.date(), h.end.date()
    month = first.replace(day=1)  # the month the history starts in (it runs into the next)
    after = (month + timedelta(days=32)).replace(day=1)
    end_after = (after + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return [
        Period.parse(h.company, start=month, end=end_after),  # two whole months, no edges
        Period.parse(h.company, start=month, end=last),  # one whole month, a tail mid-month
        Period.parse(h.company, start=first, end=end_after),  # a head from mid-month, one whole month
        Period.parse(h.company, start=month - timedelta(days=3), end=last),  # head, whole month, tail
        Period.parse(h.company, start=first + timedelta(days=1), end=last),  # no whole month
        # An edge longer than the rest of its month is read as the month less the rest: a head
        # from early in a month (Nov 4: November less Nov 1-3), a tail to late in one (to Oct 28:
        # October less Oct 29-31, across the fall-back night in Berlin).
        Period.parse(h.company, start=first + timedelta(days=2), end=end_after),
        Period.parse(h.company, start=month - timedelta(days=40), end=first + timedelta(days=3)),
    ]


def readers_and_filters(h):
    yield h.admin, Filters()
    yield h.bob, Filters()  # teams scope: Sales
    yield h.dave, Filters()  # assigned only
    yield h.vera, Filters()  # now an agent (teams scope), both teams
    yield h.admin, Filters(team_id=h.support.pk)
    yield h.admin, Filters(channel_id=h.w2.pk)
    yield h.admin, Filters(agent_id=h.vera.pk)
    yield h.admin, Filters(role_id=h.veteran.pk)  # archived: her work before the move
    yield h.admin, Filters(priority=0)
    yield h.bob, Filters(agent_id=h.erin.pk, priority=0)


def test_every_figure_matches_the_raw_computation(history):
    h = history
    from helpdesk.conversations.models import Message
    from helpdesk.events.models import Event

    # The history has what the definitions care about.
    kinds = set(Event.objects.filter(company_id=h.company.pk).values_list("type", flat=True))
    assert {"conversation.deleted", "conversation.restored", "conversation.rated", "conversation.snoozed"} <= kinds
    assert {"conversation.assigned", "conversation.resolved", "conversation.reopened"} <= kinds
    assert Message.objects.filter(conversation__company=h.company, automatic=True).exists()
    assert Message.objects.filter(conversation__company=h.company, kind="note").exists()
    assert HourlyBucket.objects.filter(company_id=h.company.pk, role=h.veteran.pk).exists()
    assert queries.dashboard(h.admin, periods(h)[0]).tile("customer_messages").current > 20
    for reader, filters in readers_and_filters(h):
        facts = raw.raw_facts(h.company.pk)
        for period in periods(h):
            want = raw.assemble(
                raw.RawSource(queries.ReaderScope.of(reader), filters, binned=True, facts=facts),
                reader,
                period,
                filters,
            )
            got = queries.dashboard(reader, period, filters)
            g, w = normal(got), normal(want)
            for part in ("tiles", "durations", "by_hour", "by_day", "workload"):
                assert g[part] == w[part], (part, reader, filters, period)
            for metric in queries.HEATMAP_METRICS:
                for mode in queries.HEATMAP_MODES:
                    source = raw.RawSource(queries.ReaderScope.of(reader), filters, facts=facts)
                    assert normal(queries.heatmap(reader, period, filters, metric, mode)) == normal(
                        queries.assemble_heatmap(source, period, metric, mode)
                    )
        # A heatmap cell lists exactly the raw facts' conversations the reader may open.
        period = periods(h)[0]
        source = raw.RawSource(queries.ReaderScope.of(reader), filters, facts=facts)
        for metric in queries.HEATMAP_METRICS:
            counts = source.heatmap_counts(period, metric)
            for weekday, hour in list(counts)[:3]:
                listed = set(
                    queries.heatmap_cell(reader, period, filters, metric, weekday, hour).values_list("pk", flat=True)
                )
                visible = set(queries.access.visible_conversations(reader).values_list("pk", flat=True))
                assert listed == source.cell_conversation_ids(period, metric, weekday, hour) & visible


def test_the_company_is_isolated(history):
    h = history
    period = periods(h)[0]
    ours = queries.dashboard(h.admin, period)
    theirs = queries.dashboard(h.carol, period)
    assert ours.tile("customer_messages").current > 0
    # The other company's widget got messages too, counted for them only.
    assert theirs.tile("customer_messages").current == raw.dashboard(h.carol, period).tile("customer_messages").current
    assert not {r.id for r in theirs.workload if r.kind == "channel"} & {h.w1.pk, h.w2.pk}


def _snapshot(company_id):
    out = {}
    for model in ROLLUP_MODELS:
        rows = model.objects.filter(company_id=company_id).values()
        keyed = {}
        for row in rows:
            row.pop("id")
            counters = {
                k: v
                for k, v in row.items()
                if k
                not in (
                    "company_id",
                    "at",
                    "team",
                    "channel",
                    "agent",
                    "role",
                    "priority",
                    "metric",
                    "bin",
                    "kind",
                    "conversation_id",
                    "contact_id",
                    "local_day",
                    "local_hour",
                    "weekday",
                    "month",
                )
            }
            key = tuple(
                row.get(k)
                for k in (
                    "at",
                    "local_day",
                    "month",
                    "local_hour",
                    "team",
                    "channel",
                    "agent",
                    "role",
                    "priority",
                    "metric",
                    "bin",
                    "kind",
                    "conversation_id",
                    "contact_id",
                )
            )
            counters = {k: round(v, 4) if isinstance(v, float) else v for k, v in counters.items()}
            if any(counters.values()) or model is Touch:
                keyed[key] = counters
        out[model.__name__] = keyed
    out["stats"] = {
        r["conversation_id"]: (r["state"], r["deleted"])
        for r in ConversationStats.objects.filter(company_id=company_id).values()
    }
    return out


def test_every_rollup_table_is_one_the_recount_rebuilds():
    # The recount empties ROLLUP_MODELS (and the running states) before it replays the log, and
    # the tests compare ROLLUP_MODELS: a company-keyed table of this app left out of it would
    # be added to, not rebuilt, by a recount, and checked by nothing.
    from django.apps import apps

    keyed = {
        model
        for model in apps.get_app_config("reports").get_models()
        if any(field.name in ("company_id", "company") for field in model._meta.concrete_fields)
    }
    assert keyed - {ConversationStats, rollups.RollupZone} == set(ROLLUP_MODELS)


def test_recount_rebuilds_identical_rollups(history):
    h = history
    before = _snapshot(h.company.pk)
    lines = []
    assert rollups.recount(h.company.pk, progress=lines.append) > 0
    assert lines and "conversations" in lines[-1]
    assert _snapshot(h.company.pk) == before


def test_the_migration_fills_the_company_wide_rollups_as_they_are_kept(history):
    """reports.0008 (and bench/reports.py) fill them from the dimensioned rollups: the same rows
    as the hook writes."""
    import importlib

    from django.db import connection

    h = history
    fill = importlib.import_module("helpdesk.reports.migrations.0008_fill_company_wide")
    before = _snapshot(h.company.pk)
    assert before["CompanyHour"] and before["CompanyDayBin"] and before["CompanyHourBin"]
    for model in (CompanyHour, CompanyDayBin, CompanyHourBin):
        model.objects.filter(company_id=h.company.pk).delete()
    with connection.cursor() as cursor:
        for sql in fill.FILL:
            cursor.execute(sql, [h.company.pk, h.company.pk])
    assert _snapshot(h.company.pk) == before


def test_the_migration_fills_the_month_grain_as_it_is_kept(history):
    """reports.0010 (and bench/reports.py) fill it from the daily and hourly rollups: the same rows
    as the hook writes."""
    import importlib

    from django.db import connection

    h = history
    fill = importlib.import_module("helpdesk.reports.migrations.0010_fill_month_grain")
    before = _snapshot(h.company.pk)
    assert before["MonthHourBucket"] and before["MonthBin"] and before["MonthHourBin"]
    months = {key[2] for key in before["MonthBin"]}
    assert months and all(m.day == 1 for m in months)
    for model in (MonthHourBucket, MonthBin, MonthHourBin):
        model.objects.filter(company_id=h.company.pk).delete()
    with connection.cursor() as cursor:
        for sql in fill.fill_statements(connection.vendor):
            cursor.execute(sql, [h.company.pk, h.company.pk])
    assert _snapshot(h.company.pk) == before


def test_the_migration_fills_the_contacts_last_days_as_they_are_kept(history):
    """reports.0012 (and bench/reports.py) fill them from the contact days: the same rows as the
    hook (and the withdrawals of deleted conversations) keep."""
    import importlib

    from django.db import connection

    h = history
    fill = importlib.import_module("helpdesk.reports.migrations.0012_contactlast")
    by_scope = importlib.import_module("helpdesk.reports.migrations.0014_contactlast_by_scope")
    before = _snapshot(h.company.pk)
    assert before["ContactLast"] and before["ContactLastTeam"] and before["ContactLastAgent"]
    for model in (ContactLast, ContactLastTeam, ContactLastAgent):
        model.objects.filter(company_id=h.company.pk).delete()
    with connection.cursor() as cursor:
        for sql in (fill.FILL, *by_scope.FILL):
            cursor.execute(sql, [h.company.pk, h.company.pk])
    assert _snapshot(h.company.pk) == before


def test_the_contacts_of_a_period_ending_today_and_after_a_deletion(history):
    """The contacts tile of a period holding the last active day is read from the last days (the
    company's, a team's, an agent's); a period ending earlier from the contact days. Both equal
    the raw count for every scope, before and after the conversations of the latest contact are
    deleted (its last days move back or go)."""
    from helpdesk.conversations import actions
    from helpdesk.conversations.models import Conversation

    h = history
    latest = ContactLast.objects.filter(company_id=h.company.pk).order_by("-last_day", "contact_id").first()
    first = h.start.date()

    def check():
        for period in (
            Period.parse(h.company, start=first, end=latest.last_day),
            Period.parse(h.company, start=first + timedelta(days=1), end=latest.last_day + timedelta(days=3)),
            Period.parse(h.company, start=first, end=latest.last_day - timedelta(days=1)),
        ):
            for reader in (h.admin, h.bob, h.dave, h.vera):  # all, teams (one team), assigned, teams (two)
                want = raw.dashboard(reader, period, binned=True).tile("contacts")
                assert queries.dashboard(reader, period).tile("contacts") == want, (reader, period)

    check()
    for conversation in Conversation.objects.filter(contact_id=latest.contact_id, deleted_at__isnull=True):
        actions.delete_conversation(conversation, by=h.admin)
    check()
    days = ContactDay.objects.filter(company_id=h.company.pk, contact_id=latest.contact_id)
    kept = ContactLast.objects.filter(company_id=h.company.pk, contact_id=latest.contact_id).first()
    assert (kept.last_day if kept else None) == max(days.values_list("local_day", flat=True), default=None)
    for model, dims in ((ContactLastTeam, ("team",)), (ContactLastAgent, ("agent", "team"))):
        kept = {
            row[:-1]: row[-1]
            for row in model.objects.filter(contact_id=latest.contact_id).values_list(*dims, "last_day")
        }
        left: dict = {}
        for *key, day in days.exclude(**{dims[0]: 0}).values_list(*dims, "local_day"):
            left[tuple(key)] = max(left.get(tuple(key), day), day)
        assert kept == left


def test_a_change_of_time_zone_recounts_the_hours(db, django_capture_on_commit_callbacks, caplog):
    from helpdesk.accounts import actions as admin_actions
    from helpdesk.reports import tasks

    h = build_history(seed=21, tz="Europe/Berlin", start=datetime(2025, 3, 29, 22, 0), steps=120)
    assert rollups.recounting(h.company.pk) is None

    def compare(company, period=None):
        period = period or Period.parse(company, start=h.start.date(), end=h.end.date())
        facts = raw.raw_facts(company.pk)
        want = raw.assemble(
            raw.RawSource(queries.ReaderScope.of(h.admin), Filters(), binned=True, facts=facts),
            h.admin,
            period,
            Filters(),
        )
        return normal(queries.dashboard(h.admin, period)), normal(want)

    before, _ = compare(h.company)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        company = admin_actions.update_company(h.company, by=h.admin, timezone_name="Asia/Tokyo")
    assert any("on_timezone_change" in repr(c) for c in queued), "the recount is queued after commit"
    # Until it has run, the figures are the previous zone's hours and the dashboard can say so.
    assert rollups.recounting(company.pk) is not None
    got, want = compare(company)
    assert got["by_hour"] != want["by_hour"]  # Berlin's hours, not Tokyo's yet

    with caplog.at_level("INFO", logger="helpdesk.reports.tasks"):
        assert tasks.recount_company.apply(args=(company.pk,)).get() > 0  # the queued task's body, run here
    assert "conversations" in caplog.text  # progress in the log
    assert rollups.recounting(company.pk) is None
    got, want = compare(company)
    for part in ("tiles", "durations", "by_hour", "by_day", "workload"):
        assert got[part] == want[part], part
    assert got["by_hour"] != before["by_hour"]
    # The month grain too: months are the company's local months, recounted with the hours.
    for period in month_periods(h):
        got, want = compare(company, Period(period.first, period.last, company.timezone))
        for part in ("tiles", "durations", "by_hour", "by_day", "workload"):
            assert got[part] == want[part], (part, period)


def _unread_by_hand(reader, filters):
    """unread_now's definition, row by row in Python."""
    from helpdesk.conversations import access
    from helpdesk.conversations.models import Direction, Message, MessageKind, ReadMarker, Status

    total = 0
    for conv in access.visible_conversations(reader).select_related("assignee"):
        if conv.status not in (Status.OPEN, Status.SNOOZED):
            continue
        wanted = (
            (filters.team_id, conv.team_id),
            (filters.channel_id, conv.channel_id),
            (filters.agent_id, conv.assignee_id),
            (filters.role_id, conv.assignee.role_id if conv.assignee else None),
            (filters.priority, conv.priority),
        )
        if any(want is not None and want != have for want, have in wanted):
            continue
        read_to = max(
            ReadMarker.objects.filter(conversation=conv).values_list("last_read_message_id", flat=True), default=0
        )
        for m in Message.objects.filter(conversation=conv):
            if m.direction == Direction.INBOUND and m.kind == MessageKind.MESSAGE and not m.while_blocked:
                total += m.pk > read_to
    return total


def test_unread_now_counts_what_nobody_has_read(history):
    from helpdesk.conversations.models import Conversation, Direction, Message, MessageKind, ReadMarker, Status

    h = history
    # Some open conversations read part-way, by one employee or two.
    open_ = list(Conversation.objects.filter(company=h.company, status=Status.OPEN).order_by("pk")[:6])
    for i, conv in enumerate(open_):
        # Markers on customer messages: the one a marker points at is read.
        ids = list(
            Message.objects.filter(conversation=conv, direction=Direction.INBOUND, kind=MessageKind.MESSAGE)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if ids:
            ReadMarker.objects.update_or_create(
                employee=h.bob, conversation=conv, defaults={"last_read_message_id": ids[len(ids) // 2]}
            )
            if i % 2:
                ReadMarker.objects.update_or_create(
                    employee=h.admin, conversation=conv, defaults={"last_read_message_id": ids[0]}
                )
    assert _unread_by_hand(h.admin, Filters()) > 0
    for reader, filters in readers_and_filters(h):
        assert queries.unread_now(reader, filters) == _unread_by_hand(reader, filters), (reader, filters)
