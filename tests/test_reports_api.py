"""The statistics' API and CSV exports: the same figures as reports.queries, scope, rights, bad input, CSV safety."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from django.db.models.query import QuerySet
from django.http import StreamingHttpResponse

from helpdesk import csvexport
from helpdesk.accounts.models import Role
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import actions
from helpdesk.conversations.models import Contact, Conversation
from helpdesk.reports import queries
from helpdesk.reports.queries import Filters, Period
from tests.conftest import login
from tests.reports_history import build_history

API = "/api/v1/reports/"


@pytest.fixture
def h(db):
    # Berlin's fall-back week: readers of every scope, an archived role, two companies.
    return build_history(seed=21, tz="Europe/Berlin", start=datetime(2024, 10, 25, 20, 0), steps=90)


def rng(h) -> dict[str, str]:
    return {"start": h.start.date().isoformat(), "end": h.end.date().isoformat()}


def csv_rows(response) -> list[list[str]]:
    assert isinstance(response, StreamingHttpResponse)
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the file as UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def number(text: str):
    return None if text == "" else float(text)


def grant(employee, *perms) -> None:
    role = employee.role
    role.permissions = sorted({*role.permissions, *map(str, perms)})
    role.save()
    employee.refresh_from_db()


# --- The same figures as the queries ------------------------------------------------------------------


def test_the_dashboard_answers_what_the_queries_compute(client, h):
    period = Period.parse(h.company, start=h.start.date(), end=h.end.date())
    for reader, params, filters in (
        (h.admin, {}, Filters()),
        (h.bob, {}, Filters()),  # teams scope: Sales
        (h.admin, {"team": h.support.pk}, Filters(team_id=h.support.pk)),
        (h.admin, {"role": h.veteran.pk, "priority": 0}, Filters(role_id=h.veteran.pk, priority=0)),
    ):
        login(client, reader)
        response = client.get(API + "dashboard", {**rng(h), **params})
        assert response.status_code == 200, response.content
        data = response.json()
        board = queries.dashboard(reader, period, filters)
        assert {t["key"]: (t["current"], t["previous"], t["change"]) for t in data["tiles"]} == {
            t.key: (t.current, t.previous, t.change) for t in board.tiles
        }
        assert [
            (p["hour"], p["customer_messages"], p["replies"], p["first_response"]["median"]) for p in data["by_hour"]
        ] == [(p.hour, p.customer_messages, p.replies, p.first_response.median) for p in board.by_hour]
        assert [(p["day"], p["opened"], p["resolved"]) for p in data["by_day"]] == [
            (p.day.isoformat(), p.opened, p.resolved) for p in board.by_day
        ]
        got = [
            (kind[:-1], r["id"] or 0, r["resolved"], r["replies"], r["ratings"], r["csat"])
            for kind in ("agents", "teams", "channels")
            for r in data["workload"][kind]
        ]
        assert got == [(w.kind, w.id, w.resolved, w.replies, w.ratings, w.csat) for w in board.workload]
        assert data["durations"]["first_response"]["current"]["count"] == board.durations["first_response"][0].count
        assert data["period"]["start"] == period.first.isoformat() and data["period"]["timezone"] == "Europe/Berlin"
    # The history has figures to compare, and a teams-scope reader sees fewer than the admin.
    login(client, h.admin)
    everyone = {t["key"]: t["current"] for t in client.get(API + "dashboard", rng(h)).json()["tiles"]}
    login(client, h.bob)
    sales = {t["key"]: t["current"] for t in client.get(API + "dashboard", rng(h)).json()["tiles"]}
    assert everyone["customer_messages"] > sales["customer_messages"] > 0


def test_the_heatmap_and_its_cells_answer_what_the_queries_compute(client, h):
    period = Period.parse(h.company, start=h.start.date(), end=h.end.date())
    for reader in (h.admin, h.bob, h.dave):
        login(client, reader)
        for metric in queries.HEATMAP_METRICS:
            for mode in queries.HEATMAP_MODES:
                data = client.get(API + "heatmap", {**rng(h), "metric": metric, "mode": mode}).json()
                heat = queries.heatmap(reader, period, Filters(), metric, mode)
                assert data["cells"] == [list(row) for row in heat.cells]
                assert data["occurrences"] == [list(row) for row in heat.occurrences]
        busiest = max(
            ((wd, hr) for wd in range(7) for hr in range(24)),
            key=lambda c: queries.heatmap(h.admin, period, None, "active_conversations").cells[c[0]][c[1]],
        )
        cell = {**rng(h), "metric": "active_conversations", "weekday": busiest[0], "hour": busiest[1], "limit": 200}
        data = client.get(API + "heatmap/cell", cell).json()
        expected = list(
            queries.heatmap_cell(reader, period, None, "active_conversations", *busiest).values_list("pk", flat=True)
        )
        assert sorted(row["id"] for row in data["results"]) == sorted(expected) and data["count"] == len(expected)
        if reader == h.admin:
            assert expected  # the busiest cell has conversations
        rows = (
            csv_rows(client.get(API + "heatmap/cell.csv", {k: v for k, v in cell.items() if k != "limit"}))
            if reader.can(Perm.EXPORT)
            else None
        )
        if rows is not None:
            assert sorted(int(r[0]) for r in rows[1:]) == sorted(expected)


def test_live_answers_what_the_queries_compute(client, cast):
    login(client, cast.alice)
    data = client.get(API + "live").json()
    now = queries.live(cast.alice)
    assert [(q["name"], q["waiting"]) for q in data["queues"]] == [(q.name, q.waiting) for q in now.queues]
    assert [(a["id"], a["open"], a["presence"]) for a in data["agents"]] == [
        (a.id, a.open, a.presence) for a in now.agents
    ]
    assert sum(q["waiting"] for q in data["queues"]) == 1  # the cast's one unassigned chat
    rows = csv_rows(client.get(API + "live-queues.csv"))
    assert [r[0] for r in rows[1:]] == ["Sales"] and rows[1][2] == "1"
    # A client that asks for text/csv gets the file, and its errors in the API's JSON shape.
    assert csv_rows(client.get(API + "live-queues.csv", headers={"accept": "text/csv"}))[1][0] == "Sales"
    refused = client.get(API + "live-queues.csv", {"team": 1}, headers={"accept": "text/csv"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_filter"
    rows = csv_rows(client.get(API + "live-agents.csv"))
    assert {r[0] for r in rows[1:]} == {a.name for a in now.agents}


# --- Rights and scope ------------------------------------------------------------------------------------


def test_reports_need_view_reports_and_files_need_export_as_well(client, h, cast):
    login(client, cast.bob)  # an agent: neither right
    for path in ("dashboard", "heatmap", "live", "tiles.csv", "heatmap.csv"):
        assert client.get(API + path).status_code == 403, path
    assert client.get("/api/v1/conversations/export.csv").status_code == 403
    login(client, h.bob)  # may view reports (the history's agent role), may not export
    assert client.get(API + "dashboard", rng(h)).status_code == 200
    for path in ("tiles.csv", "by-hour.csv", "by-day.csv", "workload-agents.csv", "heatmap.csv", "live-agents.csv"):
        response = client.get(API + path)
        assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied", path
    assert client.get("/api/v1/conversations/export.csv").status_code == 403
    # With the export right (and without view-reports) the conversation list exports, the reports don't.
    export_only = Role.objects.create(company=h.company, name="Exporter", scope="all", permissions=[Perm.EXPORT])
    h.erin.role = export_only
    h.erin.save()
    login(client, h.erin)
    assert client.get("/api/v1/conversations/export.csv").status_code == 200
    assert client.get(API + "tiles.csv").status_code == 403


def test_a_teams_scope_reader_exports_only_their_teams(client, h):
    grant(h.bob, Perm.EXPORT)
    period = Period.parse(h.company, start=h.start.date(), end=h.end.date())
    login(client, h.bob)
    rows = csv_rows(client.get(API + "tiles.csv", rng(h)))
    assert rows[0][1] == "Key"
    mine = {r[1]: number(r[2]) for r in rows[1:]}
    board = queries.dashboard(h.bob, period, Filters())
    assert mine == {t.key: (None if t.current is None else float(t.current)) for t in board.tiles}
    login(client, h.admin)
    everyone = {r[1]: number(r[2]) for r in csv_rows(client.get(API + "tiles.csv", rng(h)))[1:]}
    assert mine["customer_messages"] < everyone["customer_messages"]
    # Workload per team: Bob's scope is Sales (and his own work, wherever it was credited).
    login(client, h.bob)
    teams = csv_rows(client.get(API + "workload-teams.csv", rng(h)))
    assert "Support" not in {r[0] for r in teams[1:]} or any(
        w.kind == "team" and w.id == h.support.pk for w in board.workload
    )
    assert [(r[1] or "0", r[2]) for r in teams[1:]] == [
        (str(w.id), str(w.resolved)) for w in board.workload if w.kind == "team"
    ]


def test_the_conversation_list_export_respects_the_scope_and_filters(client, cast):
    actions.receive_message(channel=cast.widget, external_contact_id="v2", body="second")
    other = actions.receive_message(channel=cast.widget, external_contact_id="v3", body="third").conversation
    actions.assign(other, by=cast.alice, team=cast.support, assignee=None)
    actions.receive_message(channel=cast.globex_widget, external_contact_id="g", body="not yours")
    for employee in (cast.bob, cast.dave, cast.alice):
        grant(employee, Perm.EXPORT)
    for reader in (cast.alice, cast.bob, cast.dave):
        login(client, reader)
        for params in ({"view": "all"}, {"view": "unassigned"}, {"view": "all", "team_id": cast.support.pk}, {}):
            listed = client.get("/api/v1/conversations/", {**params, "limit": 200}).json()["results"]
            rows = csv_rows(client.get("/api/v1/conversations/export.csv", params))
            assert [int(r[0]) for r in rows[1:]] == [row["id"] for row in listed], (reader, params)
    login(client, cast.bob)
    ids = [int(r[0]) for r in csv_rows(client.get("/api/v1/conversations/export.csv", {"view": "all"}))[1:]]
    assert other.pk not in ids and cast.conversation.pk in ids  # Sales only
    login(client, cast.dave)
    assert csv_rows(client.get("/api/v1/conversations/export.csv", {"view": "all"}))[1:] == []
    login(client, cast.alice)
    assert client.get("/api/v1/conversations/export.csv", {"status": "bogus"}).status_code == 400


# --- Bad input -----------------------------------------------------------------------------------------------


def test_bad_input_is_refused_before_anything_is_computed(client, h, monkeypatch):
    from helpdesk.reports import queries as q

    def never(*args, **kwargs):
        raise AssertionError("computed for a bad request")

    monkeypatch.setattr(q, "assemble", never)
    monkeypatch.setattr(q, "assemble_heatmap", never)
    foreign_team = h.other.teams.create(name="Theirs")
    grant(h.admin, Perm.EXPORT)
    login(client, h.admin)
    cases = [
        ({"start": "2025-03-02", "end": "2025-03-01"}, 400, "range_reversed"),
        ({"start": "2024-01-01", "end": "2025-02-04"}, 400, "range_too_long"),
        ({"period": "fortnight"}, 400, "invalid"),
        ({"period": "7d", "start": "2025-03-01"}, 400, "bad_range"),
        ({"period": "custom", "start": "2025-03-01"}, 400, "bad_range"),
        ({"start": "0001-01-01", "end": "0001-01-02"}, 400, "invalid"),
        ({"priority": "9"}, 400, "invalid"),
        ({"team": ""}, 400, "invalid"),
        ({"colour": "red"}, 400, "bad_filter"),
        ({"team": foreign_team.pk}, 404, "not_found"),
        ({"agent": h.carol.pk}, 404, "not_found"),
        ({"channel": h.wo.pk}, 404, "not_found"),
        ({"role": 2**62}, 404, "not_found"),
    ]
    for path in ("dashboard", "heatmap", "tiles.csv", "heatmap.csv", "workload-agents.csv"):
        for params, status, code in cases:
            response = client.get(API + path, params)
            assert (response.status_code, response.json()["error"]["code"]) == (status, code), (path, params)
    for params in ({"metric": "bananas"}, {"mode": "median"}):
        assert client.get(API + "heatmap", params).status_code == 400
    for params in ({"weekday": 7, "hour": 0}, {"weekday": 0, "hour": 24}, {"weekday": 0}):
        assert client.get(API + "heatmap/cell", params).status_code == 400
        assert client.get(API + "heatmap/cell.csv", params).status_code == 400
    assert client.get(API + "live", {"team": 1}).status_code == 400


def test_another_company_never_sees_these_figures(client, h):
    login(client, h.carol)
    data = client.get(API + "dashboard", rng(h)).json()
    period = Period.parse(h.other, start=h.start.date(), end=h.end.date())
    theirs = {t.key: t.current for t in queries.dashboard(h.carol, period).tiles}
    assert {t["key"]: t["current"] for t in data["tiles"]} == theirs  # their own company's figures only
    assert client.get(API + "dashboard", {**rng(h), "team": h.sales.pk}).status_code == 404


# --- CSV: BOM, language, formula safety, streaming ---------------------------------------------------------


def test_cells_that_look_like_formulas_are_plain_text_and_numbers_stay_numbers(client, cast):
    second = actions.receive_message(channel=cast.widget, external_contact_id="evil", body="hi").conversation
    Contact.objects.filter(pk=cast.conversation.contact_id).update(name='=HYPERLINK("http://x","y")')
    Contact.objects.filter(pk=second.contact_id).update(name="+cmd|' /C calc'!A0")
    login(client, cast.alice)
    rows = csv_rows(client.get("/api/v1/conversations/export.csv", {"view": "all"}))
    contacts = {r[1] for r in rows[1:]}
    assert contacts == {'\'=HYPERLINK("http://x","y")', "'+cmd|' /C calc'!A0"}
    assert csvexport.cell(-12.5) == "-12.5" and csvexport.cell("-12.5") == "'-12.5"
    assert csvexport.cell("@SUM(A1)") == "'@SUM(A1)" and csvexport.cell(None) == ""


def test_the_file_speaks_the_readers_language_and_the_companys_time(client, cast):
    login(client, cast.alice)
    response = client.get("/api/v1/conversations/export.csv", {"view": "all"}, headers={"accept-language": "ru"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="conversations-')
    (row,) = csv_rows(response)[1:]
    assert row[3] == "Открыт" or row[3] != "Open"  # the status in Russian
    assert row[7].endswith("+03:00")  # Acme's time zone: Moscow
    # With an API key (no session, so no time zone set by the middleware): still the company's.
    from helpdesk.accounts import actions as admin_actions

    _, key = admin_actions.create_api_token(by=cast.alice, name="BI")
    client.logout()
    response = client.get(
        "/api/v1/conversations/export.csv", {"view": "all"}, headers={"authorization": f"Bearer {key}"}
    )
    (row,) = csv_rows(response)[1:]
    assert row[3] == "Open" and row[7].endswith("+03:00")


def test_the_export_streams_rows_as_it_reads_them(client, cast, monkeypatch):
    for i in range(30):
        actions.receive_message(channel=cast.widget, external_contact_id=f"bulk-{i}", body="hi")
    monkeypatch.setattr(csvexport, "CHUNK", 7)
    fetched_whole, watching = [], []
    real_fetch_all = QuerySet._fetch_all

    def spy(self):
        if watching and self.model is Conversation and self._result_cache is None:
            fetched_whole.append(str(self.query)[:80])
        return real_fetch_all(self)

    monkeypatch.setattr(QuerySet, "_fetch_all", spy)
    login(client, cast.alice)
    response = client.get("/api/v1/conversations/export.csv", {"view": "all"})
    assert isinstance(response, StreamingHttpResponse) and response.streaming
    chunks = iter(response.streaming_content)
    assert next(chunks).startswith(b"\xef\xbb\xbfID,")  # the header goes before any row is read
    # A conversation that arrives after the header was sent is still in the file: nothing was read yet.
    late = actions.receive_message(channel=cast.widget, external_contact_id="late", body="hi").conversation
    watching.append(True)
    rest = b"".join(chunks).decode()
    assert len(rest.splitlines()) == 32 and f"\n{late.pk}," in "\n" + rest
    assert fetched_whole == []  # read with iterator(), never loaded as a whole list


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_conversation_export_streams_as_it_reads(tcast):
    import warnings

    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.test import AsyncClient

    await sync_to_async(grant)(tcast.alice, Perm.EXPORT)
    await sync_to_async(Contact.objects.filter(pk=tcast.conversation.contact_id).update)(name="-1+1")
    client = AsyncClient()
    await client.aforce_login(await sync_to_async(lambda: tcast.alice.user)())
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            response = await client.get("/api/v1/conversations/export.csv", {"view": "all"})
            assert response.status_code == 200 and response.is_async  # read by an async iterator
            raw = b"".join([chunk async for chunk in response.streaming_content])
    finally:
        await sync_to_async(connections.close_all)()
    assert not [w for w in caught if "StreamingHttpResponse" in str(w.message)]
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [(int(r[0]), r[1]) for r in rows[1:]] == [(tcast.conversation.pk, "'-1+1")]
