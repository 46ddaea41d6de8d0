"""Bad input to the statistics: clear errors, nothing computed for anyone else."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.management import call_command
from django.http import Http404

from helpdesk.conversations import actions
from helpdesk.errors import ActionError
from helpdesk.reports import queries
from helpdesk.reports.queries import Filters, Period


def test_a_range_that_ends_before_it_starts_is_refused(cast):
    with pytest.raises(ActionError) as error:
        Period.parse(cast.acme, start=date(2025, 3, 2), end=date(2025, 3, 1))
    assert error.value.code == "range_reversed"


def test_a_range_longer_than_the_maximum_is_refused(cast):
    assert Period.parse(cast.acme, start="2024-01-01", end="2025-02-03").days == 400
    with pytest.raises(ActionError) as error:
        Period.parse(cast.acme, start="2024-01-01", end="2025-02-04")
    assert error.value.code == "range_too_long"
    with pytest.raises(ActionError):
        Period.parse(cast.acme, "fortnight")
    with pytest.raises(ActionError):
        Period.parse(cast.acme, start="yesterday", end="2025-01-01")


def test_presets_and_the_previous_period(cast):
    p = Period.parse(cast.acme, "7d", today=date(2025, 3, 30))
    assert (p.first, p.last, p.days) == (date(2025, 3, 24), date(2025, 3, 30), 7)
    assert (p.previous.first, p.previous.last) == (date(2025, 3, 17), date(2025, 3, 23))
    assert Period.parse(cast.acme, "today", today=date(2025, 3, 30)).previous.first == date(2025, 3, 29)


def test_another_companys_team_channel_agent_or_role_is_a_404(cast):
    from helpdesk.accounts.models import Role

    foreign_role = Role.objects.filter(company=cast.globex).first()
    for name, value in (
        ("team", cast.globex.teams.create(name="G").pk),
        ("channel", cast.globex_widget.pk),
        ("agent", cast.carol.pk),
        ("role", foreign_role.pk),
        ("agent", 999999),
        ("team", "abc"),
    ):
        with pytest.raises(Http404):
            Filters.parse(cast.alice, **{name: value})
    with pytest.raises(ActionError):
        Filters.parse(cast.alice, priority=9)
    with pytest.raises(ActionError):
        Filters.parse(cast.alice, colour="red")
    assert Filters.parse(cast.alice, team=cast.sales.pk, priority="0") == Filters(team_id=cast.sales.pk, priority=0)


def test_only_readers_of_reports_get_figures(cast):
    from django.core.exceptions import PermissionDenied

    period = Period.parse(cast.acme, "today")
    with pytest.raises(PermissionDenied):
        queries.dashboard(cast.bob, period)
    with pytest.raises(ActionError):
        queries.heatmap(cast.alice, period, None, "bananas")
    with pytest.raises(ActionError):
        queries.heatmap_cell(cast.alice, period, None, "new_conversations", 7, 0)


def test_the_heatmap_counts_hour_occurrences_across_dst(cast):
    # Sunday 27 October 2024: 02:00 occurs twice (one occurrence); Sunday 31 March 2024: none.
    fall = queries.occurrences(Period(date(2024, 10, 27), date(2024, 10, 27), "Europe/Berlin"))
    assert fall[6][2] == 1 and sum(fall[6]) == 24
    spring = queries.occurrences(Period(date(2024, 3, 31), date(2024, 3, 31), "Europe/Berlin"))
    assert spring[6][2] == 0 and sum(spring[6]) == 23


def test_unread_now_and_live(cast):
    assert queries.unread_now(cast.alice) == 1
    actions.mark_read(cast.conversation, employee=cast.bob)
    assert queries.unread_now(cast.alice) == 0
    live = queries.live(cast.alice)
    assert sum(q.waiting for q in live.queues) + sum(a.open for a in live.agents) >= 1


def test_recount_command(cast, capsys):
    call_command("recount_statistics", "--company", str(cast.acme.pk))
    out = capsys.readouterr().out
    assert "1/1 conversations" in out and "recounted" in out
