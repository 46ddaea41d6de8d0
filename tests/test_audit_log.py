"""The audit log page and its CSV export: own company only, filters, bad input, flat queries."""

from __future__ import annotations

import csv
import io
import pathlib
import re
import warnings
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.test import AsyncClient
from django.urls import reverse
from django.utils import timezone, translation

from helpdesk.accounts import actions as admin_actions
from helpdesk.conversations import actions
from helpdesk.events import audit
from helpdesk.events.models import AuditEntry
from helpdesk.web.audit_views import ACTION_LABELS, changes
from tests.conftest import login
from tests.helpers import count_queries

URL = "/settings/audit-log/"
EXPORT = "/settings/audit-log/export/"


@pytest.fixture
def history(cast):
    """A little of everything, in Acme and in Globex."""
    team = admin_actions.create_team(by=cast.alice, name="Поддержка VIP")
    admin_actions.update_team(team, by=cast.alice, name="Поддержка Premium")
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="oops")
    actions.delete_message(reply, by=cast.alice)
    actions.delete_conversation(cast.conversation, by=cast.sam)
    admin_actions.create_team(by=cast.carol, name="Globex secret team")
    admin_actions.record_sign_in(employee=None, username="nobody@nowhere.test", succeeded=False)
    return team


def shown_actions(response) -> list[str]:
    return [row["entry"].action for row in response.context["rows"]]


def csv_rows(response) -> list[list[str]]:
    raw = b"".join(response.streaming_content)
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads the file as UTF-8
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_agents_may_not_see_the_audit_log(client, cast):
    login(client, cast.bob)
    assert client.get(URL).status_code == 403
    assert client.get(EXPORT).status_code == 403


def test_the_log_shows_only_the_own_companys_rows_newest_first(client, cast, history):
    login(client, cast.alice)
    response = client.get(URL)
    assert response.status_code == 200
    assert shown_actions(response) == ["conversation.deleted", "message.deleted", "team.updated", "team.created"]
    html = response.content.decode()
    assert "Globex secret team" not in html and "nobody@nowhere.test" not in html
    # Readable: a label per action, the object, what changed.
    assert "Team changed" in html and "Поддержка Premium" in html and "Conversation deleted" in html
    # The settings sidebar offers the page, before the Trash.
    assert html.index(reverse("web:audit-log")) < html.index(reverse("web:trash"))

    login(client, cast.carol)
    assert shown_actions(client.get(URL)) == ["team.created"]


def test_changed_values_are_shown_before_and_after(cast, history):
    entry = AuditEntry.objects.get(action="team.updated")
    assert changes(entry) == [{"key": "name", "before": "Поддержка VIP", "after": "Поддержка Premium"}]
    role = admin_actions.create_role(by=cast.sam, name="Night shift", permissions=["reply"], scope="teams")
    admin_actions.update_role(role, by=cast.sam, permissions=["reply", "add_notes"])
    entry = AuditEntry.objects.get(action="role.updated")
    assert changes(entry) == [{"key": "permissions", "before": None, "after": "+add_notes"}]
    assert changes(AuditEntry.objects.get(action="conversation.deleted")) == []


def test_every_action_the_writers_record_has_a_label():
    root = pathlib.Path(__file__).resolve().parent.parent / "helpdesk"
    recorded = set()
    for path in root.rglob("*.py"):
        # The first argument of audit.record(...): a code, or `"a" if ... else "b"`.
        for first in re.findall(r'audit\.record\(\s*("[^"]+"(?:\s+if\s+[^"]+else\s+"[^"]+")?)', path.read_text()):
            recorded |= set(re.findall(r'"([^"]+)"', first))
    assert "signin.failed" in recorded and "conversation.restored" in recorded
    assert recorded - set(ACTION_LABELS) == set()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "team.created"}, ["team.created"]),
        ({"object_type": "conversation"}, ["conversation.deleted"]),
        ({"q": "premium"}, ["team.updated"]),
        ({"q": "Поддержка"}, ["team.updated", "team.created"]),
        # The log no longer holds a deleted message's text, so it can't be searched for either.
        ({"action": "message.deleted", "q": "oops"}, []),
    ],
)
def test_filters(client, cast, history, params, expected):
    login(client, cast.alice)
    assert shown_actions(client.get(URL, params)) == expected


def test_filter_by_who(client, cast, history):
    login(client, cast.alice)
    assert shown_actions(client.get(URL, {"actor": cast.sam.pk})) == ["conversation.deleted"]
    assert len(shown_actions(client.get(URL, {"actor": cast.alice.pk}))) == 3


def test_dates_are_days_in_the_company_timezone(client, cast, history):
    # 22:30 UTC on 1 May is 01:30 on 2 May in Moscow.
    entry = AuditEntry.objects.get(action="team.created", company=cast.acme)
    AuditEntry.objects.filter(pk=entry.pk).update(created_at=datetime(2024, 5, 1, 22, 30, tzinfo=UTC))
    login(client, cast.alice)
    assert shown_actions(client.get(URL, {"date_from": "2024-05-02", "date_to": "2024-05-02"})) == ["team.created"]
    assert shown_actions(client.get(URL, {"date_to": "2024-05-01"})) == []
    assert "team.created" not in shown_actions(client.get(URL, {"date_from": "2024-05-03"}))


@pytest.mark.parametrize(
    "params",
    [
        {"action": "role.exploded"},
        {"actor": "abc"},
        {"object_type": "spaceship"},
        {"date_from": "2024-13-45"},
        {"date_from": "0001-01-01"},
        {"date_from": "2024-05-03", "date_to": "2024-05-01"},
        {"q": "x" * 500},
    ],
)
def test_bad_filter_values_are_shown_as_errors_and_select_nothing(client, cast, history, params):
    login(client, cast.alice)
    response = client.get(URL, params)
    assert response.status_code == 200
    assert response.context["filters"].errors
    assert 'data-testid="filter-error"' in response.content.decode()
    assert shown_actions(response) == []
    # The export refuses the same way instead of exporting everything.
    response = client.get(EXPORT, params)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")


def test_another_companys_employee_is_not_a_choice(client, cast, history):
    login(client, cast.alice)
    response = client.get(URL, {"actor": cast.carol.pk})
    assert "actor" in response.context["filters"].errors and shown_actions(response) == []


def test_a_bad_page_number_shows_a_page(client, cast, history):
    login(client, cast.alice)
    assert client.get(URL, {"page": "zzz"}).status_code == 200
    assert client.get(URL, {"page": "999"}).status_code == 200


def test_pages_of_fifty_keep_the_filters(client, cast):
    for i in range(55):
        audit.record("team.updated", company=cast.acme, actor=cast.alice, object_type="team", object_repr=f"t{i}")
    audit.record("team.created", company=cast.acme, actor=cast.alice, object_type="team", object_repr="other")
    login(client, cast.alice)
    first = client.get(URL, {"action": "team.updated"})
    assert len(first.context["rows"]) == 50 and first.context["rows"][0]["entry"].object_repr == "t54"
    assert "?action=team.updated&amp;page=2" in first.content.decode()
    second = client.get(URL, {"action": "team.updated", "page": 2})
    assert [row["entry"].object_repr for row in second.context["rows"]] == ["t4", "t3", "t2", "t1", "t0"]


def test_the_page_query_count_does_not_grow_with_rows(client, cast):
    login(client, cast.alice)
    audit.record("team.created", company=cast.acme, actor=cast.alice, object_type="team", object_repr="one")
    client.get(URL)  # warm the session
    one = count_queries(lambda: client.get(URL))
    for i in range(30):
        audit.record(
            "team.updated",
            company=cast.acme,
            actor=cast.sam,
            object_type="team",
            object_repr=f"team {i}",
            before={"name": "a"},
            after={"name": f"b{i}"},
        )
    assert count_queries(lambda: client.get(URL)) == one


def test_the_csv_export_has_a_header_and_the_filtered_rows(client, cast, history):
    login(client, cast.alice)
    response = client.get(EXPORT)
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    today = timezone.localdate(timezone=ZoneInfo("Europe/Moscow"))
    assert response["Content-Disposition"] == f'attachment; filename="audit-log-{today:%Y-%m-%d}.csv"'
    rows = csv_rows(response)
    header, body = rows[0], rows[1:]
    assert header == [
        "Time",
        "Who",
        "Action",
        "Action code",
        "Object type",
        "Object ID",
        "Object",
        "Before",
        "After",
        "IP address",
    ]
    assert [row[3] for row in body] == ["conversation.deleted", "message.deleted", "team.updated", "team.created"]
    updated = body[2]
    assert (updated[1], updated[2], updated[4], updated[6]) == ("Alice", "Team changed", "Team", "Поддержка Premium")
    assert (updated[7], updated[8]) == ('{"name": "Поддержка VIP"}', '{"name": "Поддержка Premium"}')
    assert updated[0].endswith("+03:00")  # Moscow time, with its offset

    filtered = csv_rows(client.get(EXPORT, {"action": "team.created"}))
    assert [row[3] for row in filtered[1:]] == ["team.created"] and filtered[0] == header


def test_the_csv_export_speaks_the_employees_language(client, cast, history):
    login(client, cast.alice)
    client.cookies["django_language"] = "ru"
    rows = csv_rows(client.get(EXPORT, {"action": "team.updated"}))
    assert rows[0][0] == "Время"
    with translation.override("ru"):
        assert rows[1][2] == str(ACTION_LABELS["team.updated"])


def test_cells_that_look_like_formulas_are_made_plain_text(client, cast):
    team = admin_actions.create_team(by=cast.alice, name="Ops")
    admin_actions.update_team(team, by=cast.alice, name="=HYPERLINK(1)")
    login(client, cast.alice)
    (row,) = csv_rows(client.get(EXPORT, {"action": "team.updated"}))[1:]
    assert row[6] == "'=HYPERLINK(1)"


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_export_streams_without_reading_everything_first(tcast):
    from asgiref.sync import sync_to_async
    from channels.db import database_sync_to_async
    from django.db import connections

    await database_sync_to_async(admin_actions.create_team)(by=tcast.alice, name="Поддержка")
    client = AsyncClient()
    await client.aforce_login(tcast.alice.user)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            response = await client.get(EXPORT)
            assert response.status_code == 200 and response.is_async
            raw = b"".join([chunk async for chunk in response.streaming_content])
    finally:
        # The test client keeps the view's connection open (it is made for one test
        # transaction); close it, or the test database can't be dropped.
        await sync_to_async(connections.close_all)()
    assert not [w for w in caught if "StreamingHttpResponse" in str(w.message)]
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [row[3] for row in rows[1:]] == ["team.created"] and rows[1][6] == "Поддержка"
