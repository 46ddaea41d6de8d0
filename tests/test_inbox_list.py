"""The inbox list at scale: unread counts only for a page's rows, flat query counts, keyset pages."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from helpdesk.conversations import actions, queries
from helpdesk.conversations.access import visible_conversations
from helpdesk.conversations.models import (
    Contact,
    Conversation,
    Direction,
    Mention,
    Message,
    MessageKind,
    ReadMarker,
    Status,
)
from tests.conftest import login
from tests.helpers import count_queries
from tests.test_pages import page_state

API = "/api/v1/conversations/"


def add_conversations(cast, n: int, *, status: str = Status.OPEN) -> list[Conversation]:
    """Bulk leaf data: ``n`` conversations of team Sales, assigned to Dave, each with customer
    messages, a reply, a note mentioning Bob and Dave, and Bob's read marker on every other one.
    """
    now = timezone.now()
    start = Contact.objects.count()
    contacts = Contact.objects.bulk_create(
        Contact(company=cast.acme, name=f"Bulk {i}") for i in range(start, start + n)
    )
    conversations = Conversation.objects.bulk_create(
        Conversation(
            company=cast.acme,
            channel=cast.widget,
            contact=contact,
            status=status,
            assignee=cast.dave,
            team=cast.sales,
            priority=i % 3,
            waiting_since=now if i % 2 else None,
            last_activity_at=now - timedelta(minutes=i // 2),  # ties on purpose: the id breaks them
        )
        for i, contact in enumerate(contacts)
    )
    for conversation in conversations:
        messages = Message.objects.bulk_create(
            [
                Message(conversation=conversation, channel=cast.widget, direction=Direction.INBOUND, body="hi"),
                Message(conversation=conversation, channel=cast.widget, direction=Direction.OUTBOUND, body="hello"),
                Message(
                    conversation=conversation,
                    channel=cast.widget,
                    direction=Direction.INTERNAL,
                    kind=MessageKind.NOTE,
                    author_employee=cast.alice,
                    body="@Bob @Dave",
                ),
                Message(conversation=conversation, channel=cast.widget, direction=Direction.INBOUND, body="still?"),
            ]
        )
        Mention.objects.bulk_create(
            [
                Mention(message=messages[2], conversation=conversation, employee=cast.bob),
                Mention(message=messages[2], conversation=conversation, employee=cast.dave),
            ]
        )
        if conversation.pk % 2:
            ReadMarker.objects.create(employee=cast.bob, conversation=conversation, last_read_message_id=messages[1].pk)
    return conversations


def expected_unread(employee, conversation_id: int) -> int:
    """The definition, counted the plain way: the customer's messages after the reader's marker."""
    marker = ReadMarker.objects.filter(employee=employee, conversation_id=conversation_id).first()
    return Message.objects.filter(
        conversation_id=conversation_id,
        direction=Direction.INBOUND,
        deleted_at__isnull=True,
        while_blocked=False,
        id__gt=marker.last_read_message_id if marker else 0,
    ).count()


def api_rows(client, **params) -> list[dict]:
    response = client.get(API, {"limit": 200, **params})
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- The query count is flat: 5 rows or 60 on the page ------------------------------------------------------------

READERS_AND_VIEWS = [
    ("alice", "all"),
    ("alice", "unassigned"),
    ("bob", "all"),
    ("bob", "mentions"),
    ("dave", "mine"),
    ("dave", "all"),
    ("dave", "mentions"),
]


@pytest.mark.parametrize(("reader", "view"), READERS_AND_VIEWS)
@pytest.mark.parametrize("where", ["api", "page"])
def test_the_list_runs_the_same_queries_for_5_rows_as_for_60(client, cast, reader, view, where):
    employee = getattr(cast, reader)
    login(client, employee)
    url, params = (API, {"view": view, "limit": 100}) if where == "api" else (reverse("web:inbox"), {"view": view})

    def rows() -> int:
        response = client.get(url, params)
        assert response.status_code == 200, response.content
        return len(response.json()["results"] if where == "api" else page_state(response)["conversations"])

    add_conversations(cast, 5)
    rows()  # warm up the session
    few = count_queries(rows)
    add_conversations(cast, 55)
    many = count_queries(rows)
    if view != "unassigned":  # Dave's bulk conversations are assigned, so that view stays as it was
        assert rows() >= 60
    assert many == few, f"{reader} {view} {where}: {few} queries for a few rows, {many} for 60"


# --- Unread counts: per reader, as defined ------------------------------------------------------------------------


def test_unread_counts_follow_each_readers_marker_and_skip_notes_replies_and_deleted_messages(client, cast):
    conversation = cast.conversation
    actions.mark_read(conversation, employee=cast.bob)
    for i in range(3):
        actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body=f"more {i}")
    # Sam writes and deletes (an author's own writing moves only his own marker).
    actions.post_reply(conversation, by=cast.sam, body="looking")
    actions.add_note(conversation, by=cast.sam, body="@Bob", mention_employees=[cast.bob])
    deleted = conversation.messages.filter(direction=Direction.INBOUND).order_by("-pk").first()
    actions.delete_message(deleted, by=cast.sam)
    add_conversations(cast, 6)
    # Bob read up to before the three, one of them is deleted: 2. Alice never read it: the
    # first message and the two left. Notes and replies never count.
    expected = {cast.bob.pk: 2, cast.alice.pk: 3}
    for employee in (cast.alice, cast.bob, cast.dave):
        login(client, employee)
        for view in ("all", "mine", "mentions"):
            api = api_rows(client, view=view)
            page = page_state(client.get(reverse("web:inbox"), {"view": view}))["conversations"]
            assert {row["id"]: row["unread"] for row in api} == {row["id"]: row["unread"] for row in page}
            for row in api:
                assert row["unread"] == expected_unread(employee, row["id"]), (employee, view, row)
        if employee.pk in expected:
            [row] = [row for row in api_rows(client, view="all") if row["id"] == conversation.pk]
            assert row["unread"] == expected[employee.pk]
    # Bulk rows: Bob's marker after the first message on every other one, none for Alice.
    login(client, cast.bob)
    bulk = [row for row in api_rows(client, view="all") if row["id"] != conversation.pk]
    assert sorted({row["unread"] for row in bulk}) == [1, 2]


def test_the_queryset_still_carries_unread_for_other_callers(cast):
    for i in range(2):
        actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body=f"more {i}")
    row = queries.inbox(cast.bob, view="all").get(pk=cast.conversation.pk)
    assert row.unread == 3
    actions.mark_read(cast.conversation, employee=cast.bob)
    assert queries.inbox(cast.bob, view="all").get(pk=cast.conversation.pk).unread == 0


# --- Scopes: exactly what the gate allows, by offset or by cursor -------------------------------------------------


def walk_by_cursor(client, params: dict) -> list[int]:
    seen, response, by_cursor = [], client.get(API, {**params, "limit": 7}), False
    while True:
        assert response.status_code == 200, response.content
        data = response.json()
        seen += [row["id"] for row in data["results"]]
        if data["next_cursor"] is None:
            assert data["next"] is None
            return seen
        if by_cursor:  # the first page is an offset page: its next link stays an offset
            assert f"cursor={data['next_cursor']}" in data["next"] and "offset" not in data["next"]
        by_cursor = True
        response = client.get(API, {**params, "limit": 7, "cursor": data["next_cursor"]})


@pytest.mark.parametrize("reader", ["alice", "bob", "erin", "dave", "carol"])
def test_every_list_shows_exactly_the_gates_conversations(client, cast, reader):
    add_conversations(cast, 12)
    add_conversations(cast, 4, status=Status.RESOLVED)
    other = actions.receive_message(channel=cast.widget, external_contact_id="v-support", body="hi").conversation
    actions.assign(other, by=cast.alice, team=cast.support)
    actions.receive_message(channel=cast.globex_widget, external_contact_id="elsewhere", body="hi")
    employee = getattr(cast, reader)
    login(client, employee)
    for status in (Status.OPEN, Status.RESOLVED):
        allowed = set(visible_conversations(employee).filter(status=status).values_list("pk", flat=True))
        by_offset = [row["id"] for row in api_rows(client, view="all", status=status)]
        assert set(by_offset) == allowed and len(by_offset) == len(allowed)
        assert walk_by_cursor(client, {"view": "all", "status": status}) == by_offset
        page = page_state(client.get(reverse("web:inbox"), {"view": "all", "status": status}))
        assert {row["id"] for row in page["conversations"]} == allowed


def test_a_cursor_from_a_wider_scope_reveals_nothing_more(client, cast):
    add_conversations(cast, 10)
    other = actions.receive_message(channel=cast.widget, external_contact_id="v-support", body="hi").conversation
    actions.assign(other, by=cast.alice, team=cast.support)
    login(client, cast.alice)
    cursor = client.get(API, {"view": "all", "limit": 1}).json()["next_cursor"]
    login(client, cast.erin)  # Support only: sees the one conversation
    rows = client.get(API, {"view": "all", "cursor": cursor}).json()["results"]
    assert {row["id"] for row in rows} <= {other.pk}


# --- Keyset pages -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"view": "all"},
        {"view": "all", "ordering": "priority"},
        {"view": "mentions"},
        {"view": "mine", "ordering": "newest"},
    ],
)
def test_cursor_pages_walk_the_same_rows_as_offset_pages(client, cast, params):
    add_conversations(cast, 30)
    login(client, cast.dave)
    everything = [row["id"] for row in api_rows(client, **params)]
    assert len(everything) == 30
    assert walk_by_cursor(client, params) == everything
    # And offset pages name the cursor of what follows them too.
    first = client.get(API, {**params, "limit": 10}).json()
    after = client.get(API, {**params, "limit": 10, "cursor": first["next_cursor"]}).json()
    assert [row["id"] for row in after["results"]] == everything[10:20] and after["count"] == 30
    assert after["previous"] is None


def test_the_last_page_has_no_cursor(client, cast):
    login(client, cast.alice)
    data = client.get(API, {"view": "all"}).json()
    assert data["count"] == 1 and data["next_cursor"] is None


def _cursor(payload) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        _cursor("just a string"),
        _cursor({"o": ["-last_activity_at", "-pk"]}),
        _cursor({"o": ["-last_activity_at", "-pk"], "v": ["2026-01-01T00:00:00+00:00"]}),
        _cursor({"o": ["-last_activity_at", "-pk"], "v": ["yesterday", 5]}),
        _cursor({"o": ["-last_activity_at", "-pk"], "v": ["2026-01-01T00:00:00", 5]}),  # no offset
        _cursor({"o": ["-last_activity_at", "-pk"], "v": ["2026-01-01T00:00:00+00:00", "5"]}),
        _cursor({"o": ["-last_activity_at", "-pk"], "v": ["2026-01-01T00:00:00+00:00", True]}),
        _cursor({"o": ["-last_activity_at", "-pk"], "v": ["2026-13-45T00:00:00+00:00", 5]}),
        _cursor({"o": ["-priority", "waiting_since~", "-last_activity_at", "-pk"], "v": [1, None, None, 5]}),
        _cursor({"o": ["-pk"], "v": [5]}),  # another order's cursor
        "W" * 3000,
        base64.urlsafe_b64encode(b"[" * 5000).decode(),
    ],
)
def test_a_bad_cursor_is_a_400(client, cast, cursor):
    login(client, cast.alice)
    response = client.get(API, {"view": "all", "cursor": cursor})
    assert response.status_code == 400, response.content
    assert "cursor" in response.json()["error"]["fields"]


def test_a_cursor_with_an_offset_or_from_another_ordering_is_a_400(client, cast):
    add_conversations(cast, 3)
    login(client, cast.alice)
    cursor = client.get(API, {"view": "all", "limit": 1}).json()["next_cursor"]
    assert client.get(API, {"view": "all", "cursor": cursor, "offset": 1}).status_code == 400
    assert client.get(API, {"view": "all", "ordering": "priority", "cursor": cursor}).status_code == 400
    assert client.get(API, {"view": "mentions", "cursor": cursor}).status_code == 400
    assert client.get(API, {"view": "all", "status": "resolved", "cursor": cursor}).status_code == 200


def test_the_schema_documents_the_cursor(client, cast):
    login(client, cast.alice)
    schema = client.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/conversations/"]["get"]
    assert "cursor" in [parameter["name"] for parameter in operation["parameters"]]
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert "next_cursor" in schema["components"]["schemas"][ref]["properties"]


# --- The sidebar counts -------------------------------------------------------------------------------------------


def test_the_mentions_count_counts_unread_mentions_in_the_tab(cast):
    conversations = add_conversations(cast, 4)
    assert queries.counts(cast.bob)["mentions"] == 4
    actions.mark_read(conversations[0], employee=cast.bob)
    assert queries.counts(cast.bob)["mentions"] == 3
    assert queries.counts(cast.bob, status=Status.RESOLVED)["mentions"] == 0
    assert queries.counts(cast.erin)["mentions"] == 0  # not mentioned, and Sales is not her team


@pytest.mark.parametrize("reader", ["alice", "bob", "erin", "dave", "carol"])
def test_the_sidebar_counts_are_the_gates_conversations_counted_the_plain_way(client, cast, reader):
    # Four counts in one statement, each by its own index range: each must still be the gate's.
    add_conversations(cast, 7)
    add_conversations(cast, 3, status=Status.RESOLVED)
    actions.receive_message(channel=cast.widget, external_contact_id="v-queue", body="hi")  # in the queue
    support = actions.receive_message(channel=cast.widget, external_contact_id="v-support", body="hi").conversation
    actions.assign(support, by=cast.alice, team=cast.support)
    gone = actions.receive_message(channel=cast.widget, external_contact_id="v-gone", body="hi").conversation
    actions.delete_conversation(gone, by=cast.alice)
    actions.receive_message(channel=cast.globex_widget, external_contact_id="elsewhere", body="hi")
    employee = getattr(cast, reader)
    login(client, employee)
    for status in (Status.OPEN, Status.RESOLVED):
        tab = visible_conversations(employee).filter(status=status)
        plain = {
            "mine": tab.filter(assignee=employee).count(),
            "unassigned": tab.filter(assignee__isnull=True).count(),
            "all": tab.count(),
        }
        assert plain["all"] == len(list(tab))
        counts = queries.counts(employee, status=status)
        assert {view: counts[view] for view in plain} == plain
        page = client.get(reverse("web:inbox"), {"view": "all", "status": status})
        shown = {view: int(n) for view, n in page_view_counts(page.content.decode()).items()}
        assert shown == counts


def page_view_counts(html: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'data-view-count="(\w+)">(\d+)<', html))


def test_the_sidebar_counts_take_one_query_when_the_team_ids_are_known(cast):
    add_conversations(cast, 3)
    teams = list(cast.bob.teams.values_list("pk", flat=True))
    assert count_queries(lambda: queries.counts(cast.bob, status=Status.OPEN, teams=teams)) == 1


@pytest.mark.parametrize("rows", [6, 105])  # the whole list on the page, or more than the page shows
def test_the_mentions_views_sidebar_count_is_its_unread_mentions_whether_or_not_the_list_is_whole(client, cast, rows):
    conversations = add_conversations(cast, rows)
    for conversation in conversations[:2]:
        actions.mark_read(conversation, employee=cast.bob)  # read past the mention
    add_conversations(cast, 1, status=Status.RESOLVED)  # another tab's mention: not counted
    login(client, cast.bob)
    page = client.get(reverse("web:inbox"), {"view": "mentions"})
    shown = page_view_counts(page.content.decode())
    assert int(shown["mentions"]) == queries.counts(cast.bob)["mentions"] == rows - 2
