"""The Reports page: who may open it, that it shows exactly queries.dashboard's figures for the
reader's scope, and that bad input is a clear 400/404 with nothing computed."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from helpdesk.accounts import services
from helpdesk.accounts.models import Role, Scope
from helpdesk.accounts.permissions import AGENT_PERMS, Perm
from helpdesk.conversations import actions
from helpdesk.conversations.models import Priority
from helpdesk.reports import queries
from helpdesk.reports.queries import Filters, Period
from tests.conftest import login

URL = reverse("web:reports")
CELL_URL = reverse("web:reports-heatmap-cell")


def tiles(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-tile="([a-z_0-9]+)" data-value="([^"]*)"', html))


def expected_tiles(dashboard) -> dict[str, str]:
    return {t.key: "" if t.current is None else repr(t.current) for t in dashboard.tiles}


def heat_cells(html: str) -> dict[tuple[int, int], str]:
    return {
        (int(w), int(h)): v
        for w, h, v in re.findall(r'data-weekday="(\d)" data-hour="(\d+)" data-value="([^"]*)"', html)
    }


def table_rows(html: str, testid: str) -> list[list[str]]:
    table = re.search(rf'data-testid="{testid}".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [
        [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    ]


@pytest.fixture
def busy(cast):
    """Bob answers and resolves the Sales chat; a second chat, high priority, waits in Support."""
    sales_conv = cast.conversation
    actions.assign(sales_conv, by=cast.alice, assignee=cast.bob)
    actions.post_reply(sales_conv, by=cast.bob, body="On its way.")
    actions.resolve(sales_conv, by=cast.bob)
    support_channel = services.create_widget_channel(
        company=cast.acme, name="Support site", team=cast.support, allowed_origins=["*"]
    )
    other = actions.receive_message(
        channel=support_channel, external_contact_id="visitor-2", body="Refund, please", external_id="w:2"
    ).conversation
    actions.set_priority(other, by=cast.alice, priority=Priority.HIGH)
    actions.receive_message(channel=support_channel, external_contact_id="visitor-2", body="Hello?", external_id="w:3")
    return {"sales": sales_conv, "support": other, "support_channel": support_channel}


def test_only_readers_of_reports_open_the_page_and_see_it_in_the_top_bar(client, cast):
    login(client, cast.bob)
    for url in (URL, CELL_URL, reverse("web:reports-live")):
        assert client.get(url).status_code == 403
    assert 'data-testid="nav-reports"' not in client.get(reverse("web:inbox")).content.decode()
    login(client, cast.alice)
    assert 'data-testid="nav-reports"' in client.get(reverse("web:inbox")).content.decode()
    assert client.get(URL).status_code == 200
    client.logout()
    assert client.get(URL).status_code == 302  # to the sign-in page


def test_the_page_shows_exactly_the_dashboards_figures(client, cast, busy):
    login(client, cast.alice)
    html = client.get(URL, {"period": "7d"}).content.decode()
    dashboard = queries.dashboard(cast.alice, Period.parse(cast.acme, "7d"), Filters())
    shown = tiles(html)
    expected = expected_tiles(dashboard)
    assert shown, "no tiles on the page"
    for key, value in shown.items():
        assert value == expected[key], key
    assert {"opened", "resolved", "customer_messages", "unread_now", "contacts", "csat"} <= set(shown)
    assert {f"first_response_{a}" for a in ("median", "p90", "average")} <= set(shown)
    assert shown["opened"] == "2" and shown["customer_messages"] == "3" and shown["resolved"] == "1"
    # The hour and day tables are the charts' data.
    rows = table_rows(html, "by-hour-table")
    assert [int(r[1]) for r in rows] == [p.customer_messages for p in dashboard.by_hour]
    assert [int(r[2]) for r in rows] == [p.replies for p in dashboard.by_hour]
    days = table_rows(html, "by-day-table")
    assert [int(r[1]) for r in days] == [p.opened for p in dashboard.by_day] and len(days) == 7
    # The heatmap equals queries.heatmap for the same inputs, in both modes.
    for mode in ("total", "average"):
        page = client.get(URL, {"period": "7d", "metric": "customer_messages", "mode": mode}).content.decode()
        heat = queries.heatmap(cast.alice, Period.parse(cast.acme, "7d"), None, "customer_messages", mode)
        cells = heat_cells(page)
        assert len(cells) == 7 * 24
        for (w, h), value in cells.items():
            assert value == ("" if heat.cells[w][h] is None else repr(heat.cells[w][h])), (mode, w, h)
    # Workload per agent: Bob replied once and resolved once.
    bob = next(r for r in table_rows(html, "workload-agents") if r[0] == "Bob")
    assert bob[5:7] == ["1", "1"]


def test_filters_narrow_the_figures_as_the_dashboard_does(client, cast, busy):
    login(client, cast.alice)
    for params in ({"team": cast.support.pk}, {"channel": busy["support_channel"].pk}, {"agent": cast.bob.pk}):
        html = client.get(URL, {"period": "30d", **params}).content.decode()
        dashboard = queries.dashboard(
            cast.alice,
            Period.parse(cast.acme, "30d"),
            Filters.parse(cast.alice, **{k: str(v) for k, v in params.items()}),
        )
        assert tiles(html) == {k: v for k, v in expected_tiles(dashboard).items() if k in tiles(html)}
    html = client.get(URL, {"period": "30d", "team": cast.support.pk}).content.decode()
    assert tiles(html)["customer_messages"] == "2"


def test_a_teams_scope_reader_sees_their_teams_numbers_only(client, cast, busy):
    lead = Role.objects.create(
        company=cast.acme, name="Team lead", scope=Scope.TEAMS, permissions=[*map(str, AGENT_PERMS), Perm.VIEW_REPORTS]
    )
    cast.erin.role = lead
    cast.erin.save(update_fields=["role"])
    login(client, cast.erin)
    html = client.get(URL, {"period": "7d"}).content.decode()
    mine = queries.dashboard(cast.erin, Period.parse(cast.acme, "7d"), Filters())
    assert tiles(html) == {k: v for k, v in expected_tiles(mine).items() if k in tiles(html)}
    # Support's conversation only: one opened, two customer messages; Sales' resolve is not theirs.
    assert (tiles(html)["opened"], tiles(html)["customer_messages"], tiles(html)["resolved"]) == ("1", "2", "0")
    assert "Bob" not in [r[0] for r in table_rows(html, "workload-agents")]
    # The heatmap's cells list only what the inbox would let them open.
    sales_cell = {"period": "7d", "metric": "new_conversations"}
    created = busy["sales"].created_at.astimezone(ZoneInfo(cast.acme.timezone))
    sales_cell |= {"weekday": created.weekday(), "hour": created.hour}
    listed = client.get(CELL_URL, sales_cell).content.decode()
    assert f'data-conversation="{busy["sales"].pk}"' not in listed
    login(client, cast.alice)
    assert f'data-conversation="{busy["sales"].pk}"' in client.get(CELL_URL, sales_cell).content.decode()


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"period": "fortnight"}, 400, "Unknown period"),
        ({"period": "custom", "start": "2025-03-02", "end": "2025-03-01"}, 400, "ends before it starts"),
        ({"period": "custom", "start": "2024-01-01", "end": "2025-06-01"}, 400, "at most"),
        ({"period": "custom", "start": "yesterday", "end": "2025-01-01"}, 400, "Not a date"),
        ({"period": "custom"}, 400, "needs a start and an end"),
        ({"priority": "9"}, 400, "Unknown priority"),
        ({"metric": "bananas"}, 400, "Unknown heatmap metric"),
        ({"mode": "median"}, 400, "Unknown heatmap mode"),
        ({"team": "abc"}, 404, "does not exist in your company"),
        ({"agent": "999999"}, 404, "does not exist in your company"),
    ],
)
def test_bad_input_is_a_clear_error_and_computes_nothing(client, cast, params, status, words, monkeypatch):
    computed = []
    monkeypatch.setattr(queries, "assemble", lambda *a, **k: computed.append(a))
    login(client, cast.alice)
    response = client.get(URL, params)
    assert response.status_code == status
    html = response.content.decode()
    assert words in unescape(re.search(r'data-testid="report-error">(.*?)<', html, re.S).group(1))
    assert 'data-testid="tiles"' not in html and not computed


def test_another_companys_filter_ids_are_refused(client, cast):
    foreign_role = Role.objects.filter(company=cast.globex).first()
    foreign_team = cast.globex.teams.create(name="Globex team")
    login(client, cast.alice)
    html = client.get(URL).content.decode()
    # The choices offered are Acme's only.
    assert "Globex" not in html and "Carol" not in html
    for name, value in (
        ("team", foreign_team.pk),
        ("channel", cast.globex_widget.pk),
        ("agent", cast.carol.pk),
        ("role", foreign_role.pk),
    ):
        response = client.get(URL, {name: value})
        assert response.status_code == 404, name
        assert 'data-testid="tiles"' not in response.content.decode()
        assert client.get(CELL_URL, {name: value, "weekday": 0, "hour": 0}).status_code == 404


def test_archived_roles_are_offered_and_marked(client, cast):
    old = Role.objects.create(company=cast.acme, name="Night shift", scope=Scope.ALL, permissions=[])
    from django.utils import timezone

    old.archived_at = timezone.now()
    old.save(update_fields=["archived_at"])
    login(client, cast.alice)
    html = client.get(URL).content.decode()
    assert re.search(rf'<option value="{old.pk}"[^>]*>Night shift \(archived\)</option>', html)
    assert client.get(URL, {"role": old.pk}).status_code == 200


def test_a_heatmap_cell_lists_its_conversations_linked_to_the_inbox(client, cast):
    login(client, cast.alice)
    created = cast.conversation.created_at.astimezone(ZoneInfo(cast.acme.timezone))
    query = {"period": "today", "metric": "new_conversations"}
    page = client.get(URL, query).content.decode()
    link = re.search(
        rf'data-weekday="{created.weekday()}" data-hour="{created.hour}" data-value="1">\s*<a href="([^"]+)"', page
    )
    assert link, "the cell of the new conversation links to its list"
    listed = client.get(unescape(link.group(1))).content.decode()
    inbox_link = reverse("web:conversation", args=[cast.conversation.pk])
    assert f'href="{inbox_link}?view=all&amp;status=open"' in listed
    for bad in ({"weekday": 7, "hour": 0}, {"weekday": 0, "hour": 24}, {"weekday": "x", "hour": 1}, {}):
        assert client.get(CELL_URL, {**query, **bad}).status_code == 400


def test_the_live_block_shows_the_queue(client, cast):
    login(client, cast.alice)
    html = client.get(reverse("web:reports-live")).content.decode()
    # The widget's first conversation waits, unassigned, in Sales.
    live = queries.live(cast.alice)
    assert sum(q.waiting for q in live.queues) == 1
    assert re.search(rf'data-team="{cast.sales.pk}"><td>Sales</td><td data-col="waiting">1</td>', html)


def test_the_russian_page_renders(client, cast, busy):
    login(client, cast.alice)
    client.cookies["django_language"] = "ru"
    html = client.get(URL, {"period": "30d"}, HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert (
        'lang="ru"' in html and "Статистика" in html and "Последние 30 дней" in html and "Нагрузка по агентам" in html
    )


def test_a_url_with_the_period_and_filters_reads_back(client, cast):
    login(client, cast.alice)
    query = urlencode({"period": "custom", "start": "2025-01-01", "end": "2025-01-31", "team": cast.sales.pk})
    html = client.get(f"{URL}?{query}").content.decode()
    assert 'value="2025-01-01"' in html and f'<option value="{cast.sales.pk}" selected>' in html
    assert len(table_rows(html, "by-day-table")) == 31


@pytest.mark.django_db(transaction=True)
async def test_the_reports_socket_says_changed_for_the_readers_events_only(tcast):
    from channels.db import database_sync_to_async
    from channels.testing import WebsocketCommunicator

    from smartchat.asgi import application
    from tests.test_sockets import inbox_socket

    async def reports_socket(employee):
        # The inbox socket's session and origin headers, on the reports path.
        communicator = await inbox_socket(employee)
        return WebsocketCommunicator(application, "/ws/reports/", headers=communicator.scope["headers"])

    bob = await reports_socket(tcast.bob)  # an agent: no view-reports permission
    connected, code = await bob.connect()
    assert not connected and code == 4403
    alice = await reports_socket(tcast.alice)
    connected, _ = await alice.connect()
    assert connected and (await alice.receive_json_from())["type"] == "hello"
    await database_sync_to_async(actions.receive_message)(
        channel=tcast.widget, external_contact_id="visitor-7", body="Hi", external_id="w:7"
    )
    assert (await alice.receive_json_from(timeout=3))["type"] == "changed"
    # A burst of events (created, message, …) is told at most once per throttle window, the last too.
    while not await alice.receive_nothing(timeout=2.5):
        assert (await alice.receive_json_from())["type"] == "changed"
    # Another company's event reaches no socket of Acme's.
    await database_sync_to_async(actions.receive_message)(
        channel=tcast.globex_widget, external_contact_id="g-1", body="Hi", external_id="g:1"
    )
    assert await alice.receive_nothing(timeout=2.5)
    await alice.disconnect()


def test_readers_who_may_export_get_each_report_as_csv_for_the_same_period(client, cast, busy):
    login(client, cast.alice)
    params = {"period": "custom", "start": "2020-01-01", "end": "2020-01-31", "metric": "customer_messages"}
    html = client.get(URL, params).content.decode()
    links = [
        unescape(href) for href in re.findall(r'data-testid="exports".*?</section>', html, re.S)[0].split('href="')[1:]
    ]
    links = [link.split('"')[0] for link in links]
    assert len(links) == 8
    for link in links:
        response = client.get(link)
        assert response.status_code == 200, (link, response.content[:300])
        assert response["Content-Type"].startswith("text/csv")
        assert b"".join(response.streaming_content).startswith("\ufeff".encode())
        if "live-" not in link:  # the live queue is now, whatever the period
            assert "start=2020-01-01" in link and "end=2020-01-31" in link and "period=" not in link
    assert any("metric=customer_messages" in link for link in links)  # the heatmap's own choice
    lead = Role.objects.create(
        company=cast.acme, name="Reader", scope=Scope.ALL, permissions=[*map(str, AGENT_PERMS), Perm.VIEW_REPORTS]
    )
    cast.erin.role = lead
    cast.erin.save(update_fields=["role"])
    login(client, cast.erin)  # may read reports, may not export: no links
    assert 'data-testid="exports"' not in client.get(URL).content.decode()
