"""Priority, reassignment, one's presence and the team's assignment settings, through the API and pages.

Bad input is a clear 4xx (or a form error) and changes nothing; another company's ids are 404.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts import services
from helpdesk.accounts.models import AssignmentMethod, Employee, Presence, PresenceChange, Role, Scope, Team
from helpdesk.conversations import actions
from helpdesk.conversations.models import Conversation, Priority
from helpdesk.events.models import AuditEntry
from tests.conftest import login
from tests.helpers import count_queries, event_types, last_event_id

API = "/api/v1/"


def post(client, url: str, data: dict):
    return client.post(url, data, content_type="application/json")


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


# --- Priority ------------------------------------------------------------------------------------------------


def test_an_agent_sets_the_priority_through_the_api(client, cast):
    login(client, cast.bob)
    response = post(client, f"{API}conversations/{cast.conversation.pk}/priority", {"priority": 4})
    assert response.status_code == 200 and response.json()["priority"] == Priority.URGENT
    assert event_types(cast.conversation)[-1] == "conversation.priority_changed"


@pytest.mark.parametrize("value", [5, -1, "high", None, 2.5])
def test_a_bad_priority_is_a_400_and_changes_nothing(client, cast, value):
    login(client, cast.bob)
    mark = last_event_id()
    response = post(client, f"{API}conversations/{cast.conversation.pk}/priority", {"priority": value})
    assert error(response) == (400, "invalid") and "priority" in response.json()["error"]["fields"]
    cast.conversation.refresh_from_db()
    assert cast.conversation.priority == Priority.NONE and event_types(after=mark) == []


def test_another_companys_conversation_is_404_for_priority(client, cast):
    login(client, cast.carol)
    response = post(client, f"{API}conversations/{cast.conversation.pk}/priority", {"priority": 3})
    assert response.status_code == 404


def test_a_role_that_may_not_reply_may_not_set_priority(client, cast):
    watcher = Role.objects.create(company=cast.acme, name="Watcher", scope=Scope.ALL, permissions=["add_notes"])
    Employee.objects.filter(pk=cast.erin.pk).update(role=watcher)
    login(client, cast.erin)
    assert post(client, f"{API}conversations/{cast.conversation.pk}/priority", {"priority": 3}).status_code == 403


def test_ordering_by_priority_puts_the_highest_first_then_the_longest_waiting(client, cast):
    newer = actions.receive_message(channel=cast.widget, external_contact_id="v2", body="hi").conversation
    newest = actions.receive_message(channel=cast.widget, external_contact_id="v3", body="hi").conversation
    actions.set_priority(newest, by=cast.alice, priority=Priority.HIGH)
    login(client, cast.alice)
    url = f"{API}conversations/"
    rows = lambda **extra: [r["id"] for r in client.get(url, {"view": "all", **extra}).json()["results"]]  # noqa: E731
    assert rows() == [newest.pk, newer.pk, cast.conversation.pk]
    assert rows(ordering="newest") == [newest.pk, newer.pk, cast.conversation.pk]
    # Same priority for the other two: the customer waiting longest first.
    assert rows(ordering="priority") == [newest.pk, cast.conversation.pk, newer.pk]
    assert client.get(url, {"ordering": "loudest"}).status_code == 400


def test_ordering_by_priority_costs_no_more_queries_for_more_rows(client, cast):
    login(client, cast.alice)
    url = f"{API}conversations/?view=all&ordering=priority"
    few = count_queries(lambda: client.get(url))
    for i in range(5):
        conversation = actions.receive_message(channel=cast.widget, external_contact_id=f"m{i}", body="x").conversation
        actions.set_priority(conversation, by=cast.alice, priority=i % 5)
    assert count_queries(lambda: client.get(url)) == few


# --- Reassignment ---------------------------------------------------------------------------------------------


def test_reassigning_to_an_agent_and_a_team_through_the_api(client, cast):
    login(client, cast.alice)
    url = f"{API}conversations/{cast.conversation.pk}/assign"
    data = post(client, url, {"team_id": cast.support.pk, "assignee_id": cast.erin.pk}).json()
    assert (data["team_id"], data["assignee_id"], data["assignee_name"]) == (cast.support.pk, cast.erin.pk, "Erin")


def test_reassigning_to_a_team_with_automatic_assignment_routes_it_there(client, cast):
    admin_actions.presence_from_inbox(cast.erin.pk, connecting=True)  # Erin opens her inbox
    login(client, cast.alice)
    data = post(
        client, f"{API}conversations/{cast.conversation.pk}/assign", {"team_id": cast.support.pk, "assignee_id": None}
    ).json()
    assert (data["team_id"], data["assignee_id"]) == (cast.support.pk, cast.erin.pk)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (lambda c: {"assignee_id": c.carol.pk}, 404, "not_found"),  # another company's employee
        (lambda c: {"team_id": c.globex_team.pk}, 404, "not_found"),  # another company's team
        (lambda c: {"team_id": c.sales.pk, "assignee_id": c.erin.pk}, 400, "not_in_team"),
        (lambda c: {"assignee_id": c.watcher.pk}, 400, "cannot_reply"),
        (lambda c: {"assignee_id": c.gone.pk}, 400, "inactive_employee"),
        (lambda c: {"assignee_id": "bob"}, 400, "invalid"),
    ],
)
def test_bad_reassignments_are_refused_and_change_nothing(client, cast, body, status, code):
    cast.globex_team = Team.objects.create(company=cast.globex, name="Globex team")
    watcher = Role.objects.create(company=cast.acme, name="Watcher", scope=Scope.ALL, permissions=["add_notes"])
    cast.watcher = services.create_employee(company=cast.acme, email="w@acme.test", name="Wendy", role=watcher)
    cast.gone = services.create_employee(company=cast.acme, email="g@acme.test", name="Gone", role="agent")
    admin_actions.deactivate_employee(cast.gone, by=cast.alice)
    login(client, cast.alice)
    mark = last_event_id()
    response = post(client, f"{API}conversations/{cast.conversation.pk}/assign", body(cast))
    assert error(response) == (status, code)
    if code == "not_in_team":
        assert response.json()["error"]["message"] == "Erin is not a member of that team."
    conversation = Conversation.objects.get(pk=cast.conversation.pk)
    assert (conversation.team_id, conversation.assignee_id) == (cast.sales.pk, None)
    assert event_types(after=mark) == []


# --- One's own presence ------------------------------------------------------------------------------------------


def test_an_employee_sets_their_presence_through_the_api_and_each_change_is_recorded(client, cast):
    login(client, cast.bob)
    assert client.get(f"{API}presence").json() == {"employee_id": cast.bob.pk, "presence": "offline"}
    assert post(client, f"{API}presence", {"presence": "online"}).json()["presence"] == "online"
    assert post(client, f"{API}presence", {"presence": "away"}).json()["presence"] == "away"
    assert post(client, f"{API}presence", {"presence": "away"}).status_code == 200  # no change, no record
    changes = list(PresenceChange.objects.filter(employee=cast.bob).order_by("pk").values_list("presence", "source"))
    assert changes == [("online", "manual"), ("away", "manual")]


def test_going_online_hands_out_the_queue(client, cast):
    login(client, cast.bob)
    post(client, f"{API}presence", {"presence": "online"})
    cast.conversation.refresh_from_db()
    assert cast.conversation.assignee == cast.bob


@pytest.mark.parametrize("value", ["busy", "", None, 1])
def test_a_bad_presence_is_a_400_and_changes_nothing(client, cast, value):
    login(client, cast.bob)
    response = post(client, f"{API}presence", {"presence": value})
    assert error(response) == (400, "invalid")
    assert Employee.objects.get(pk=cast.bob.pk).presence == "offline"
    assert not PresenceChange.objects.exists()


def test_the_top_bar_menu_sets_presence_and_comes_back_to_the_page(client, cast):
    login(client, cast.bob)
    page = client.get(reverse("web:api-tokens"))
    assert 'data-testid="presence"' in page.content.decode()
    response = client.post(reverse("web:presence"), {"presence": "away", "next": reverse("web:api-tokens")})
    assert (response.status_code, response.url) == (302, reverse("web:api-tokens"))
    assert Employee.objects.get(pk=cast.bob.pk).presence == "away"
    # Somewhere else entirely: back to the inbox instead.
    response = client.post(reverse("web:presence"), {"presence": "online", "next": "https://evil.test/"})
    assert response.url == reverse("web:inbox")


def test_the_top_bar_menu_refuses_a_bad_presence(client, cast):
    login(client, cast.bob)
    response = client.post(reverse("web:presence"), {"presence": "invisible"})
    assert response.status_code == 400 and "Presence must be one of" in response.content.decode()
    assert Employee.objects.get(pk=cast.bob.pk).presence == "offline"
    assert client.get(reverse("web:presence")).status_code == 405


# --- The team's assignment settings -------------------------------------------------------------------------------


def team_form(cast, **changes) -> dict:
    return {"name": "Sales", "members": [cast.bob.pk], "assignment_method": "balanced", **changes}


def test_an_admin_chooses_the_teams_method_and_limit_on_its_page_and_it_is_audited(client, cast):
    login(client, cast.alice)
    url = reverse("web:team", args=[cast.sales.pk])
    page = client.get(url)
    assert page.context["form"]["assignment_method"].value() == "balanced"
    response = client.post(url, team_form(cast, assignment_method="round_robin", max_open_per_agent=3))
    assert response.status_code == 302
    team = Team.objects.get(pk=cast.sales.pk)
    assert (team.assignment_method, team.max_open_per_agent) == (AssignmentMethod.ROUND_ROBIN, 3)
    entry = AuditEntry.objects.filter(action="team.updated").latest("id")
    assert (entry.before["assignment_method"], entry.after["assignment_method"]) == ("balanced", "round_robin")
    assert (entry.before["max_open_per_agent"], entry.after["max_open_per_agent"]) == (None, 3)
    # Emptied: no team limit.
    client.post(url, team_form(cast, max_open_per_agent=""))
    assert Team.objects.get(pk=cast.sales.pk).max_open_per_agent is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"max_open_per_agent": -1}, "max_open_per_agent", "The limit per agent must be a whole number, 0 or more"),
        ({"max_open_per_agent": "lots"}, "max_open_per_agent", "Enter a whole number."),
        ({"assignment_method": "random"}, "assignment_method", "Unknown assignment method: random."),
    ],
)
def test_bad_team_settings_are_refused_on_the_page_and_nothing_changes(client, cast, changes, field, message):
    login(client, cast.alice)
    audits = AuditEntry.objects.count()
    response = client.post(reverse("web:team", args=[cast.sales.pk]), team_form(cast, name="Renamed", **changes))
    assert response.status_code == 200
    assert message in response.context["form"].errors[field][0]
    team = Team.objects.get(pk=cast.sales.pk)
    assert (team.name, team.assignment_method, team.max_open_per_agent) == ("Sales", "balanced", None)
    assert AuditEntry.objects.count() == audits


def test_the_teams_api_reads_and_changes_the_assignment_settings(client, cast):
    login(client, cast.alice)
    url = f"{API}teams/{cast.sales.pk}/"
    data = client.patch(url, {"assignment_method": "manual", "max_open_per_agent": 2}, content_type="application/json")
    assert (data.json()["assignment_method"], data.json()["max_open_per_agent"]) == ("manual", 2)
    bad = client.patch(url, {"max_open_per_agent": -3}, content_type="application/json")
    assert error(bad) == (400, "bad_limit")
    bad = client.patch(url, {"assignment_method": "whoever"}, content_type="application/json")
    assert error(bad) == (400, "invalid")
    team = Team.objects.get(pk=cast.sales.pk)
    assert (team.assignment_method, team.max_open_per_agent) == ("manual", 2)
    login(client, cast.bob)  # an agent may read it, not change it
    assert client.patch(url, {"assignment_method": "balanced"}, content_type="application/json").status_code == 403


# --- The inbox page's state -------------------------------------------------------------------------------------


def inbox_state(client, path: str = "/inbox/", **params) -> dict:
    response = client.get(path, params)
    assert response.status_code == 200
    return response.context["state"]


def test_the_inbox_knows_who_is_online_and_who_may_be_given_a_chat(client, cast):
    watcher = Role.objects.create(company=cast.acme, name="Watcher", scope=Scope.ALL, permissions=["add_notes"])
    wendy = services.create_employee(company=cast.acme, email="w@acme.test", name="Wendy", role=watcher)
    admin_actions.set_presence(cast.erin, presence=Presence.AWAY)
    login(client, cast.alice)
    state = inbox_state(client, f"/inbox/{cast.conversation.pk}/")
    assert state["presence"][cast.erin.pk] == "away" and state["presence"][cast.bob.pk] == "offline"
    agents = {a["name"]: a["team_ids"] for a in state["assignment"]["agents"]}
    assert agents["Bob"] == [cast.sales.pk] and "Wendy" not in agents and "Carol" not in agents
    assert wendy.pk in state["presence"]  # still a colleague, just not someone to hand chats to
    assert [t["name"] for t in state["assignment"]["teams"]] == ["Sales", "Support"]
    assert [p[0] for p in state["assignment"]["priorities"]] == [0, 1, 2, 3, 4]


def test_the_thread_history_says_who_assigned_and_set_priority_and_carries_no_text(client, cast):
    actions.assign(cast.conversation, by=cast.alice, team=cast.support, assignee=cast.erin)
    actions.set_priority(cast.conversation, by=cast.erin, priority=Priority.HIGH)
    login(client, cast.alice)
    history = inbox_state(client, f"/inbox/{cast.conversation.pk}/")["assignment"]["history"]
    assert [(h["type"], h["actor_name"]) for h in history] == [
        ("conversation.assigned", "Alice"),
        ("conversation.priority_changed", "Erin"),
    ]
    moved = history[0]
    assert (moved["team_id"], moved["assignee_name"], moved["previous"]) == (
        cast.support.pk,
        "Erin",
        {"assignee_id": None, "team_id": cast.sales.pk},
    )
    assert "preview" not in str(history) and "order shipped" not in str(history)


def test_the_chosen_order_is_kept_in_a_cookie_and_the_page_lists_by_it(client, cast):
    urgent = actions.receive_message(channel=cast.widget, external_contact_id="v2", body="hi").conversation
    actions.receive_message(channel=cast.widget, external_contact_id="v3", body="hi")
    actions.set_priority(urgent, by=cast.alice, priority=Priority.URGENT)
    login(client, cast.alice)
    assert inbox_state(client, view="all")["conversations"][0]["id"] != urgent.pk
    client.cookies["inbox_ordering"] = "priority"
    state = inbox_state(client, view="all")
    assert state["ordering"] == "priority" and state["conversations"][0]["id"] == urgent.pk
    client.cookies["inbox_ordering"] = "<script>"  # anything else: the default
    assert inbox_state(client, view="all")["ordering"] == "newest"


def test_the_inbox_page_query_count_does_not_grow_with_colleagues_or_history(client, cast):
    login(client, cast.alice)
    url = f"/inbox/{cast.conversation.pk}/"
    before = count_queries(lambda: client.get(url))
    for i in range(4):
        services.create_employee(
            company=cast.acme, email=f"n{i}@acme.test", name=f"N{i}", role="agent", teams=[cast.sales]
        )
        actions.set_priority(cast.conversation, by=cast.alice, priority=i + 1)
        actions.assign(cast.conversation, by=cast.alice, assignee=cast.bob if i % 2 else cast.alice)
    assert count_queries(lambda: client.get(url)) == before
