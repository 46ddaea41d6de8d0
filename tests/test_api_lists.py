"""Every API list: paginated, filtered, deterministic, and its query count does not grow with its rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts import services
from helpdesk.accounts.models import Employee, Role, Scope, Team
from helpdesk.conversations import actions
from helpdesk.conversations.models import Contact, Conversation, Priority
from tests.conftest import login
from tests.helpers import count_queries

API = "/api/v1/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


# --- Conversations: the inbox's view and status, and django-filter filters --------------------------------------


def test_without_parameters_the_list_is_my_open_conversations(client, cast):
    login(client, cast.bob)
    assert ids(client.get(f"{API}conversations/")) == []
    actions.assign(cast.conversation, by=cast.bob, assignee=cast.bob)
    assert ids(client.get(f"{API}conversations/")) == [cast.conversation.pk]
    actions.resolve(cast.conversation, by=cast.bob)
    assert ids(client.get(f"{API}conversations/")) == []
    assert ids(client.get(f"{API}conversations/", {"status": "resolved"})) == [cast.conversation.pk]


def test_filtering_conversations_by_assignee_team_channel_and_priority(client, cast):
    other = actions.receive_message(channel=cast.widget, external_contact_id="v2", body="hi").conversation
    actions.assign(other, by=cast.alice, assignee=cast.erin, team=cast.support)
    Conversation.objects.filter(pk=other.pk).update(priority=Priority.HIGH)
    login(client, cast.alice)
    url = f"{API}conversations/"
    assert ids(client.get(url, {"view": "all"})) == [other.pk, cast.conversation.pk]
    assert ids(client.get(url, {"view": "all", "assignee_id": cast.erin.pk})) == [other.pk]
    assert ids(client.get(url, {"view": "all", "team_id": cast.sales.pk})) == [cast.conversation.pk]
    assert ids(client.get(url, {"view": "all", "channel_id": cast.widget.pk})) == [other.pk, cast.conversation.pk]
    assert ids(client.get(url, {"view": "all", "priority": Priority.HIGH})) == [other.pk]
    assert ids(client.get(url, {"view": "unassigned"})) == [cast.conversation.pk]
    # Another company's ids find nothing, as ids that don't exist.
    assert ids(client.get(url, {"view": "all", "channel_id": cast.globex_widget.pk})) == []


def test_filters_never_widen_the_roles_scope(client, cast):
    other = actions.receive_message(channel=cast.widget, external_contact_id="v2", body="hi").conversation
    actions.assign(other, by=cast.alice, team=cast.support)
    login(client, cast.bob)  # team Sales only
    assert ids(client.get(f"{API}conversations/", {"view": "all", "team_id": cast.support.pk})) == []
    login(client, cast.dave)  # assigned only
    assert ids(client.get(f"{API}conversations/", {"view": "all"})) == []


@pytest.mark.parametrize(
    "params",
    [
        {"view": "everything"},
        {"status": "closed"},
        {"assignee_id": "me"},
        {"team_id": "1.5"},
        {"priority": "9"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"offset": "-5"},
    ],
)
def test_bad_conversation_filters_are_a_400_in_the_error_shape(client, cast, params):
    login(client, cast.alice)
    response = client.get(f"{API}conversations/", params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and set(params) & set(error["fields"])


def test_pages_follow_limit_and_offset_and_stop_at_200(client, cast):
    for i in range(4):
        actions.receive_message(channel=cast.widget, external_contact_id=f"p{i}", body="hi")
    login(client, cast.alice)
    everything = ids(client.get(f"{API}conversations/", {"view": "all"}))
    page = client.get(f"{API}conversations/", {"view": "all", "limit": 2, "offset": 2}).json()
    assert page["count"] == 5 and [row["id"] for row in page["results"]] == everything[2:4]
    assert "offset=4" in page["next"] and "offset" not in page["previous"]
    assert client.get(f"{API}conversations/", {"view": "all", "limit": 100000}).status_code == 200


# --- Query counts: flat on every list ----------------------------------------------------------------------------


def _more_employees(cast, n):
    start = Employee.objects.count()
    for i in range(start, start + n):
        services.create_employee(
            company=cast.acme, email=f"e{i}@acme.test", name=f"E{i}", role="agent", teams=[cast.sales, cast.support]
        )


def _more_teams(cast, n):
    for i in range(Team.objects.count(), Team.objects.count() + n):
        services.create_team(company=cast.acme, name=f"T{i}", members=[cast.bob, cast.erin])


def _more_roles(cast, n):
    for i in range(Role.objects.count(), Role.objects.count() + n):
        role = admin_actions.create_role(by=cast.sam, name=f"R{i}", permissions=["reply"], scope=Scope.TEAMS)
        services.create_employee(company=cast.acme, email=f"r{i}@acme.test", name=f"R{i}", role=role)


def _more_contacts(cast, n):
    for i in range(Contact.objects.count(), Contact.objects.count() + n):
        actions.receive_message(channel=cast.widget, external_contact_id=f"c{i}", body="hi")


def _more_messages(cast, n):
    for i in range(n):
        actions.post_reply(cast.conversation, by=cast.sam, body=f"r{i}")
        actions.add_note(cast.conversation, by=cast.sam, body=f"n{i}")


def _more_tokens(cast, n):
    for i in range(n):
        token, _ = admin_actions.create_api_token(by=cast.sam, name=f"K{i}")
        if i % 2:
            admin_actions.revoke_api_token(token, by=cast.sam)


LISTS = {
    "employees": ("employees/", {}, _more_employees),
    "employees filtered": ("employees/", {"team_id": "SALES", "search": "e"}, _more_employees),
    "teams": ("teams/", {}, _more_teams),
    "roles": ("roles/", {"archived": "false"}, _more_roles),
    "contacts": ("contacts/", {}, _more_contacts),
    "conversations": ("conversations/", {"view": "all"}, _more_contacts),
    "conversations filtered": ("conversations/", {"view": "all", "team_id": "SALES"}, _more_contacts),
    "messages": ("conversations/CONVERSATION/messages/", {}, _more_messages),
    "tokens": ("tokens/", {}, _more_tokens),
}


@pytest.mark.parametrize("name", LISTS)
@pytest.mark.parametrize("auth", ["session", "token"])
def test_the_query_count_does_not_grow_with_the_rows(client, cast, name, auth):
    path, params, add_rows = LISTS[name]
    url = API + path.replace("CONVERSATION", str(cast.conversation.pk))
    params = {key: str(cast.sales.pk) if value == "SALES" else value for key, value in params.items()}
    headers = {}
    if auth == "token":
        _, key = admin_actions.create_api_token(by=cast.sam, name="counting")
        headers = {"authorization": f"Bearer {key}"}
    else:
        login(client, cast.sam)

    def fetch():
        response = client.get(url, params, headers=headers)
        assert response.status_code == 200, response.content
        return response.json()["count"]

    add_rows(cast, 1)  # at least one row: an empty list skips the page query
    fetch()  # warm up (the token's last use is written at most once a minute)
    count_before = fetch()
    few = count_queries(fetch)
    add_rows(cast, 10)
    assert fetch() > count_before
    assert count_queries(fetch) == few, f"{name}: {few} queries for a few rows, more for many"


def test_lists_are_ordered_deterministically(client, cast):
    # Same timestamps everywhere: the id breaks ties, so pages never overlap or skip.
    now = timezone.now()
    for i in range(5):
        actions.receive_message(channel=cast.widget, external_contact_id=f"t{i}", body="hi")
    Conversation.objects.update(last_activity_at=now - timedelta(minutes=1))
    login(client, cast.alice)
    first = ids(client.get(f"{API}conversations/", {"view": "all", "limit": 3}))
    second = ids(client.get(f"{API}conversations/", {"view": "all", "limit": 3, "offset": 3}))
    assert first + second == sorted(first + second, reverse=True) and len(set(first + second)) == 6
