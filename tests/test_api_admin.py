"""The API's people and customers: employees, teams, roles and contacts.

Each endpoint is tried by someone allowed, someone not allowed (403), another company
(404, nothing changes) and, in test_api_tokens.py, nobody (401).
"""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts import services
from helpdesk.accounts.models import Employee, Role, Scope, Team
from helpdesk.conversations import actions
from helpdesk.conversations.models import Contact
from helpdesk.errors import ActionError
from helpdesk.events.models import AuditEntry
from tests.conftest import login
from tests.live import free_port

API = "/api/v1/"
JSON = "application/json"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def patch(client, url, data):
    return client.patch(url, data, content_type=JSON)


def post(client, url, data=None):
    return client.post(url, data or {}, content_type=JSON)


# --- Employees -----------------------------------------------------------------------------------------------


def test_every_employee_lists_their_colleagues_but_only_managers_see_addresses(client, cast):
    login(client, cast.bob)
    rows = client.get(f"{API}employees/").json()["results"]
    assert [row["name"] for row in rows] == ["Alice", "Bob", "Dave", "Erin", "Sam"]  # never Carol of Globex
    bob = next(row for row in rows if row["name"] == "Bob")
    assert bob["role"] == {"id": cast.bob.role_id, "name": "Agent"}
    assert bob["teams"] == [{"id": cast.sales.pk, "name": "Sales"}]
    assert (bob["presence"], bob["active"], bob["email"], bob["capacity"]) == ("offline", True, None, None)

    login(client, cast.alice)
    bob = client.get(f"{API}employees/{cast.bob.pk}/").json()
    assert (bob["email"], bob["capacity"]) == ("bob@acme.test", 10)


def test_online_without_a_recent_heartbeat_shows_as_away(client, cast):
    admin_actions.presence_from_inbox(cast.erin.pk, connecting=True)
    Employee.objects.filter(pk=cast.bob.pk).update(presence="online", last_seen_at=None)
    login(client, cast.alice)
    rows = {row["name"]: row["presence"] for row in client.get(f"{API}employees/").json()["results"]}
    assert (rows["Erin"], rows["Bob"], rows["Sam"]) == ("online", "away", "offline")


def test_filtering_employees(client, cast):
    admin_actions.deactivate_employee(cast.erin, by=cast.alice)
    login(client, cast.bob)
    url = f"{API}employees/"
    assert ids(client.get(url, {"team_id": cast.sales.pk})) == [cast.bob.pk]
    assert ids(client.get(url, {"role_id": cast.dave.role_id})) == [cast.dave.pk]
    assert ids(client.get(url, {"active": "false"})) == [cast.erin.pk]
    assert cast.erin.pk not in ids(client.get(url, {"active": "true"}))
    assert ids(client.get(url, {"search": "DAV"})) == [cast.dave.pk]
    # Only managers may search by address: an agent can't probe who has which e-mail.
    assert ids(client.get(url, {"search": "dave@acme"})) == []
    login(client, cast.alice)
    assert ids(client.get(url, {"search": "dave@acme"})) == [cast.dave.pk]
    # Another company's ids in a filter find nothing, exactly like ids that don't exist.
    assert ids(client.get(url, {"role_id": cast.carol.role_id})) == []


@pytest.mark.parametrize(
    "params",
    [{"role_id": "abc"}, {"team_id": "1.5"}, {"active": "maybe"}, {"limit": "-1"}, {"search": "x" * 101}],
)
def test_bad_employee_filters_are_a_400_with_field_errors(client, cast, params):
    login(client, cast.bob)
    response = client.get(f"{API}employees/", params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] in ("invalid", "parse_error") or error["fields"]


def test_another_companys_employee_is_a_404(client, cast):
    login(client, cast.carol)
    assert client.get(f"{API}employees/{cast.bob.pk}/").status_code == 404
    assert client.get(f"{API}employees/999999/").status_code == 404
    assert cast.bob.pk not in ids(client.get(f"{API}employees/"))


def test_a_manager_adds_an_employee_and_sends_the_invitation(client, cast):
    login(client, cast.alice)
    response = post(
        client,
        f"{API}employees/",
        {
            "email": "Nina@Acme.test",
            "name": "Nina",
            "role_id": cast.bob.role_id,
            "team_ids": [cast.sales.pk, cast.support.pk],
            "capacity": 5,
            "send_invite": True,
        },
    )
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["name"], data["email"], data["capacity"], data["invite_sent"]) == ("Nina", "nina@acme.test", 5, True)
    assert [team["name"] for team in data["teams"]] == ["Sales", "Support"]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["nina@acme.test"]
    assert "/account/set-password/" in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="employee.added", actor=cast.alice).exists()


def test_adding_without_an_invitation_sends_nothing(client, cast):
    login(client, cast.alice)
    response = post(
        client, f"{API}employees/", {"email": "nina@acme.test", "name": "Nina", "role_id": cast.bob.role_id}
    )
    assert response.status_code == 201 and response.json()["invite_sent"] is False
    assert mail.outbox == []


def test_a_mail_server_that_refuses_still_leaves_the_employee_added(client, cast, settings):
    # A real SMTP client against a port where nothing listens: the send fails, the account stays.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    login(client, cast.alice)
    response = post(
        client,
        f"{API}employees/",
        {"email": "nina@acme.test", "name": "Nina", "role_id": cast.bob.role_id, "send_invite": True},
    )
    assert response.status_code == 201 and response.json()["invite_sent"] is False
    assert Employee.objects.filter(user__email="nina@acme.test").exists()


@pytest.mark.parametrize("foreign", ["role", "team"])
def test_adding_with_another_companys_role_or_team_is_a_404_and_adds_nobody(client, cast, foreign):
    globex_team = services.create_team(company=cast.globex, name="Globex sales")
    payload = {"email": "nina@acme.test", "name": "Nina", "role_id": cast.bob.role_id, "team_ids": [cast.sales.pk]}
    if foreign == "role":
        payload["role_id"] = cast.carol.role_id
    else:
        payload["team_ids"] = [cast.sales.pk, globex_team.pk]
    login(client, cast.alice)
    before = Employee.objects.count()
    response = post(client, f"{API}employees/", payload)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Employee.objects.count() == before


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "Nina", "role_id": 1}, "email"),
        ({"email": "not-an-address", "name": "Nina", "role_id": 1}, "email"),
        ({"email": "nina@acme.test", "name": "", "role_id": 1}, "name"),
        ({"email": "nina@acme.test", "name": "Nina", "role_id": "agent"}, "role_id"),
        ({"email": "nina@acme.test", "name": "Nina", "role_id": 1, "capacity": -1}, "capacity"),
        ({"email": "nina@acme.test", "name": "Nina", "role_id": 1, "team_ids": "1"}, "team_ids"),
    ],
)
def test_bad_employee_input_is_a_400_and_adds_nobody(client, cast, payload, field):
    login(client, cast.alice)
    before = Employee.objects.count()
    response = post(client, f"{API}employees/", payload)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Employee.objects.count() == before


def test_malformed_json_is_a_400_and_changes_nothing(client, cast):
    login(client, cast.alice)
    response = client.post(f"{API}employees/", "{not json", content_type=JSON)
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"
    response = client.patch(f"{API}employees/{cast.bob.pk}/", "[", content_type=JSON)
    assert response.status_code == 400
    cast.bob.refresh_from_db()
    assert cast.bob.display_name == "Bob"


def test_the_rules_of_the_writer_are_a_400_with_their_code(client, cast):
    login(client, cast.alice)
    response = post(
        client, f"{API}employees/", {"email": "bob@acme.test", "name": "Bob 2", "role_id": cast.bob.role_id}
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "duplicate_email"


def test_an_agent_may_not_add_employees(client, cast):
    login(client, cast.bob)
    before = Employee.objects.count()
    response = post(client, f"{API}employees/", {"email": "x@acme.test", "name": "X", "role_id": cast.bob.role_id})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert Employee.objects.count() == before


def test_an_admin_may_not_hand_out_the_super_admin_role(client, cast):
    login(client, cast.alice)
    response = post(client, f"{API}employees/", {"email": "x@acme.test", "name": "X", "role_id": cast.sam.role_id})
    assert response.status_code == 403
    assert not Employee.objects.filter(user__email="x@acme.test").exists()


def test_a_manager_updates_name_role_teams_and_capacity(client, cast):
    login(client, cast.alice)
    response = patch(
        client,
        f"{API}employees/{cast.bob.pk}/",
        {"name": "Robert", "role_id": cast.dave.role_id, "team_ids": [cast.support.pk], "capacity": 3},
    )
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["name"], data["role"]["name"], data["capacity"]) == ("Robert", "Assigned only", 3)
    assert data["teams"] == [{"id": cast.support.pk, "name": "Support"}]
    # A partial update leaves the rest alone.
    data = patch(client, f"{API}employees/{cast.bob.pk}/", {"capacity": 4}).json()
    assert (data["name"], data["capacity"], len(data["teams"])) == ("Robert", 4, 1)


def test_updating_with_another_companys_team_is_a_404_and_changes_nothing(client, cast):
    globex_team = services.create_team(company=cast.globex, name="Globex sales")
    login(client, cast.alice)
    response = patch(client, f"{API}employees/{cast.bob.pk}/", {"name": "Robert", "team_ids": [globex_team.pk]})
    assert response.status_code == 404
    cast.bob.refresh_from_db()
    assert cast.bob.display_name == "Bob" and list(cast.bob.teams.all()) == [cast.sales]


def test_updating_is_for_managers_of_the_same_company(client, cast):
    login(client, cast.bob)
    assert patch(client, f"{API}employees/{cast.erin.pk}/", {"name": "E"}).status_code == 403
    login(client, cast.carol)
    assert patch(client, f"{API}employees/{cast.erin.pk}/", {"name": "E"}).status_code == 404
    cast.erin.refresh_from_db()
    assert cast.erin.display_name == "Erin"


def test_nobody_changes_their_own_role(client, cast):
    login(client, cast.alice)
    response = patch(client, f"{API}employees/{cast.alice.pk}/", {"role_id": cast.bob.role_id})
    assert response.status_code == 400 and response.json()["error"]["code"] == "own_role"


def test_deactivating_and_reactivating(client, cast):
    bobs_client = type(client)()
    login(bobs_client, cast.bob)
    login(client, cast.alice)
    response = post(client, f"{API}employees/{cast.bob.pk}/deactivate")
    assert response.status_code == 200 and response.json()["active"] is False
    # Bob's own session stops working at once.
    assert bobs_client.get(f"{API}conversations/").status_code == 401
    response = post(client, f"{API}employees/{cast.bob.pk}/reactivate")
    assert response.status_code == 200 and response.json()["active"] is True
    assert post(client, f"{API}employees/{cast.alice.pk}/deactivate").json()["error"]["code"] == "self"


def test_deactivating_is_for_managers_of_the_same_company(client, cast):
    login(client, cast.bob)
    assert post(client, f"{API}employees/{cast.erin.pk}/deactivate").status_code == 403
    login(client, cast.carol)
    assert post(client, f"{API}employees/{cast.erin.pk}/deactivate").status_code == 404
    assert post(client, f"{API}employees/{cast.erin.pk}/reactivate").status_code == 404
    cast.erin.refresh_from_db()
    assert cast.erin.is_active


# --- Teams ---------------------------------------------------------------------------------------------------


def test_every_employee_lists_teams_with_their_members(client, cast):
    login(client, cast.dave)
    rows = client.get(f"{API}teams/").json()["results"]
    assert rows == [
        {
            "id": cast.sales.pk,
            "name": "Sales",
            "members": [{"id": cast.bob.pk, "name": "Bob", "active": True}],
            "assignment_method": "balanced",
            "max_open_per_agent": None,
        },
        {
            "id": cast.support.pk,
            "name": "Support",
            "members": [{"id": cast.erin.pk, "name": "Erin", "active": True}],
            "assignment_method": "balanced",
            "max_open_per_agent": None,
        },
    ]
    assert ids(client.get(f"{API}teams/", {"member_id": cast.erin.pk})) == [cast.support.pk]
    assert ids(client.get(f"{API}teams/", {"search": "sal"})) == [cast.sales.pk]
    assert client.get(f"{API}teams/", {"member_id": "x"}).status_code == 400
    assert client.get(f"{API}teams/{cast.sales.pk}/").json()["name"] == "Sales"


def test_another_companys_team_is_a_404(client, cast):
    login(client, cast.carol)
    assert ids(client.get(f"{API}teams/")) == []
    assert client.get(f"{API}teams/{cast.sales.pk}/").status_code == 404
    assert patch(client, f"{API}teams/{cast.sales.pk}/", {"name": "Ours"}).status_code == 404
    cast.sales.refresh_from_db()
    assert cast.sales.name == "Sales"


def test_a_manager_creates_and_updates_a_team(client, cast):
    login(client, cast.alice)
    response = post(client, f"{API}teams/", {"name": "Night", "member_ids": [cast.erin.pk, cast.bob.pk]})
    assert response.status_code == 201
    team = response.json()
    assert [m["name"] for m in team["members"]] == ["Bob", "Erin"]
    response = patch(client, f"{API}teams/{team['id']}/", {"name": "Night shift", "member_ids": [cast.dave.pk]})
    assert response.status_code == 200
    assert (response.json()["name"], [m["id"] for m in response.json()["members"]]) == ("Night shift", [cast.dave.pk])
    assert post(client, f"{API}teams/", {"name": "night SHIFT"}).json()["error"]["code"] == "duplicate"


def test_a_team_with_another_companys_member_is_a_404_and_is_not_created(client, cast):
    login(client, cast.alice)
    assert (
        post(client, f"{API}teams/", {"name": "Mixed", "member_ids": [cast.bob.pk, cast.carol.pk]}).status_code == 404
    )
    assert not Team.objects.filter(name="Mixed").exists()
    response = patch(client, f"{API}teams/{cast.sales.pk}/", {"member_ids": [cast.carol.pk]})
    assert response.status_code == 404
    assert list(cast.sales.members.all()) == [cast.bob]


def test_agents_may_not_change_teams(client, cast):
    login(client, cast.bob)
    assert post(client, f"{API}teams/", {"name": "Mine"}).status_code == 403
    assert patch(client, f"{API}teams/{cast.sales.pk}/", {"name": "Mine"}).status_code == 403
    assert not Team.objects.filter(name="Mine").exists()


# --- Roles ---------------------------------------------------------------------------------------------------


def test_roles_are_read_by_role_and_employee_managers_only(client, cast):
    login(client, cast.bob)
    assert client.get(f"{API}roles/").status_code == 403
    assert client.get(f"{API}roles/{cast.bob.role_id}/").status_code == 403
    for manager in (cast.alice, cast.sam):
        login(client, manager)
        rows = {row["name"]: row for row in client.get(f"{API}roles/").json()["results"]}
        assert set(rows) == {"Admin", "Agent", "Assigned only", "Super-admin"}
    agent = rows["Agent"]
    assert (agent["builtin"], agent["scope"], agent["holders"], agent["archived"]) == ("agent", "teams", 2, False)
    assert "reply" in agent["permissions"]
    assert rows["Assigned only"]["builtin"] is None


def test_filtering_roles(client, cast):
    spare = admin_actions.create_role(by=cast.sam, name="Spare", permissions=[], scope=Scope.ASSIGNED)
    admin_actions.archive_role(spare, by=cast.sam)
    login(client, cast.alice)
    assert ids(client.get(f"{API}roles/", {"archived": "true"})) == [spare.pk]
    assert spare.pk not in ids(client.get(f"{API}roles/", {"archived": "false"}))
    assert ids(client.get(f"{API}roles/", {"scope": "assigned"})) == [cast.dave.role_id, spare.pk]
    assert client.get(f"{API}roles/", {"scope": "some"}).status_code == 400


def test_another_companys_role_is_a_404(client, cast):
    login(client, cast.sam)
    assert client.get(f"{API}roles/{cast.carol.role_id}/").status_code == 404
    assert patch(client, f"{API}roles/{cast.carol.role_id}/", {"name": "Ours"}).status_code == 404
    assert post(client, f"{API}roles/{cast.carol.role_id}/archive").status_code == 404
    assert Role.objects.get(pk=cast.carol.role_id).name == "Admin"


def test_a_super_admin_creates_edits_archives_and_unarchives_a_role(client, cast):
    login(client, cast.sam)
    response = post(client, f"{API}roles/", {"name": "Night", "permissions": ["reply", "add_notes"], "scope": "teams"})
    assert response.status_code == 201
    role = response.json()
    assert (role["permissions"], role["holders"], role["builtin"]) == (["add_notes", "reply"], 0, None)
    role = patch(client, f"{API}roles/{role['id']}/", {"name": "Night shift", "scope": "all"}).json()
    assert (role["name"], role["scope"], role["permissions"]) == ("Night shift", "all", ["add_notes", "reply"])
    role = post(client, f"{API}roles/{role['id']}/archive").json()
    assert role["archived"] is True and role["archived_at"]
    assert patch(client, f"{API}roles/{role['id']}/", {"name": "x"}).json()["error"]["code"] == "archived"
    assert post(client, f"{API}roles/{role['id']}/unarchive").json()["archived"] is False


def test_a_held_role_is_not_archived(client, cast):
    login(client, cast.sam)
    response = post(client, f"{API}roles/{cast.dave.role_id}/archive")
    assert response.status_code == 400 and response.json()["error"]["code"] == "role_in_use"


def test_an_admin_reads_roles_but_may_not_change_them(client, cast):
    login(client, cast.alice)
    assert post(client, f"{API}roles/", {"name": "Mine", "permissions": [], "scope": "all"}).status_code == 403
    assert patch(client, f"{API}roles/{cast.dave.role_id}/", {"scope": "all"}).status_code == 403
    assert post(client, f"{API}roles/{cast.dave.role_id}/archive").status_code == 403
    assert not Role.objects.filter(name="Mine").exists()
    assert Role.objects.get(pk=cast.dave.role_id).scope == Scope.ASSIGNED


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "X", "permissions": ["fly"], "scope": "all"},
        {"name": "X", "permissions": "reply", "scope": "all"},
        {"name": "X", "permissions": [], "scope": "universe"},
        {"name": "", "permissions": [], "scope": "all"},
    ],
)
def test_bad_roles_are_a_400_and_nothing_is_created(client, cast, payload):
    login(client, cast.sam)
    before = Role.objects.count()
    response = post(client, f"{API}roles/", payload)
    assert response.status_code == 400 and response.json()["error"]["fields"]
    assert Role.objects.count() == before


def test_nobody_edits_their_own_role_through_the_api(client, cast):
    login(client, cast.sam)
    response = patch(client, f"{API}roles/{cast.sam.role_id}/", {"permissions": []})
    assert response.status_code == 400 and response.json()["error"]["code"] == "own_role"


# --- Contacts ------------------------------------------------------------------------------------------------


def second_contact(cast, **defaults) -> Contact:
    """A contact who wrote to Globex... no: to Acme's widget, then moved to team Support."""
    message = actions.receive_message(
        channel=cast.widget, external_contact_id="visitor-2", body="Hi", contact_defaults=defaults
    )
    actions.assign(message.conversation, by=cast.alice, team=cast.support)
    return message.conversation.contact


def test_contacts_follow_the_roles_scope(client, cast):
    first = cast.conversation.contact
    second = second_contact(cast, name="Vera")
    expected = {
        cast.alice: [second.pk, first.pk],  # sees all, newest first
        cast.bob: [first.pk],  # team Sales
        cast.erin: [second.pk],  # team Support
        cast.dave: [],  # assigned only, and nothing is assigned to him
        cast.carol: [],  # another company
    }
    for employee, visible in expected.items():
        login(client, employee)
        assert ids(client.get(f"{API}contacts/")) == visible, employee
    login(client, cast.bob)
    assert client.get(f"{API}contacts/{second.pk}/").status_code == 404


def test_assigned_only_sees_a_contact_once_their_chat_is_assigned(client, cast):
    contact = cast.conversation.contact
    login(client, cast.dave)
    assert client.get(f"{API}contacts/{contact.pk}/").status_code == 404
    actions.assign(cast.conversation, by=cast.alice, assignee=cast.dave)
    assert ids(client.get(f"{API}contacts/")) == [contact.pk]
    assert client.get(f"{API}contacts/{contact.pk}/").json()["conversation_ids"] == [cast.conversation.pk]


def test_another_companys_contact_is_a_404_and_is_not_changed(client, cast):
    contact = cast.conversation.contact
    login(client, cast.carol)
    assert client.get(f"{API}contacts/{contact.pk}/").status_code == 404
    assert patch(client, f"{API}contacts/{contact.pk}/", {"name": "Stolen"}).status_code == 404
    contact.refresh_from_db()
    assert contact.name == ""


def test_a_contacts_detail_shows_identities_and_visible_conversations(client, cast):
    contact = cast.conversation.contact
    login(client, cast.bob)
    data = client.get(f"{API}contacts/{contact.pk}/").json()
    assert data["identities"] == [
        {
            "channel_id": cast.widget.pk,
            "channel_kind": "widget",
            "channel_name": "Acme site",
            "external_id": "visitor-1",
            "created_at": data["identities"][0]["created_at"],
        }
    ]
    assert data["conversation_ids"] == [cast.conversation.pk]


def test_filtering_contacts(client, cast):
    vera = second_contact(cast, name="Vera Petrova", email="Vera@Example.com", phone="+7 900 000-00-00")
    login(client, cast.alice)
    url = f"{API}contacts/"
    assert ids(client.get(url, {"email": "vera@example.com"})) == [vera.pk]
    assert ids(client.get(url, {"phone": "+7 900 000-00-00"})) == [vera.pk]
    assert ids(client.get(url, {"search": "petrov"})) == [vera.pk]
    assert ids(client.get(url, {"search": "900"})) == [vera.pk]
    assert ids(client.get(url, {"search": "nobody"})) == []
    assert client.get(url, {"email": "x" * 300}).status_code == 400


def test_an_agent_corrects_a_contact_and_the_audit_log_shows_it(client, cast):
    contact = cast.conversation.contact
    login(client, cast.bob)
    response = patch(
        client,
        f"{API}contacts/{contact.pk}/",
        {"name": "  Ivan  Petrov ", "email": "ivan@example.com", "phone": "+7 (900) 123-45-67", "attributes": {
            "plan": "gold", "seats": 5, "vip": True, "note": None}},
    )  # fmt: skip
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["name"], data["email"], data["phone"]) == ("Ivan Petrov", "ivan@example.com", "+7 (900) 123-45-67")
    assert data["attributes"] == {"plan": "gold", "seats": 5, "vip": True, "note": None}
    assert data["conversation_ids"] == [cast.conversation.pk]
    entry = AuditEntry.objects.get(action="contact.updated")
    assert (entry.company_id, entry.actor_id, entry.object_id) == (cast.acme.pk, cast.bob.pk, str(contact.pk))
    assert entry.before["name"] == "" and entry.after["name"] == "Ivan Petrov"
    # Attributes are replaced as a whole; other fields stay.
    data = patch(client, f"{API}contacts/{contact.pk}/", {"attributes": {"plan": "free"}}).json()
    assert (data["name"], data["attributes"]) == ("Ivan Petrov", {"plan": "free"})


@pytest.mark.parametrize(
    "payload",
    [
        {"attributes": ["a", "b"]},
        {"attributes": "plan=gold"},
        {"attributes": {"nested": {"a": 1}}},
        {"attributes": {"list": [1, 2]}},
        {"attributes": {"": "empty name"}},
        {"attributes": {"k" * 65: 1}},
        {"attributes": {"long": "x" * 1001}},
        {"attributes": {f"k{i}": i for i in range(51)}},
        {"attributes": {f"k{i}": "x" * 1000 for i in range(20)}},
        {"email": "not an address"},
        {"phone": "call me maybe"},
        {"name": "x" * 201},
        {"name": ["Ivan"]},
    ],
)
def test_bad_contact_values_are_a_400_and_change_nothing(client, cast, payload):
    contact = cast.conversation.contact
    login(client, cast.bob)
    response = patch(client, f"{API}contacts/{contact.pk}/", payload)
    assert response.status_code == 400, response.content
    assert "error" in response.json()
    contact.refresh_from_db()
    assert (contact.name, contact.email, contact.phone, contact.attributes) == ("", "", "", {})
    assert not AuditEntry.objects.filter(action="contact.updated").exists()


def test_changing_contacts_needs_the_permission_and_sight_of_the_contact(client, cast):
    contact = cast.conversation.contact
    login(client, cast.erin)  # may manage contacts, but this one is not in her team's chats
    assert patch(client, f"{API}contacts/{contact.pk}/", {"name": "E"}).status_code == 404
    cast.bob.role.permissions = [p for p in cast.bob.role.permissions if p != "manage_contacts"]
    cast.bob.role.save()
    login(client, cast.bob)
    assert patch(client, f"{API}contacts/{contact.pk}/", {"name": "B"}).status_code == 403
    contact.refresh_from_db()
    assert contact.name == ""


def test_update_contact_refuses_another_company_and_a_missing_permission(cast):
    contact = cast.conversation.contact
    with pytest.raises(ActionError) as error:
        actions.update_contact(contact, by=cast.carol, name="Stolen")
    assert error.value.code == "foreign"
    cast.bob.role.permissions = ["reply"]
    cast.bob.role.save()
    with pytest.raises(PermissionDenied):
        actions.update_contact(contact, by=cast.bob, name="B")
    contact.refresh_from_db()
    assert contact.name == ""


def test_update_contact_records_only_what_changed(cast):
    contact = cast.conversation.contact
    actions.update_contact(contact, by=cast.alice, name="Ivan", email="", phone="")
    entry = AuditEntry.objects.get(action="contact.updated")
    assert (entry.before, entry.after) == ({"name": ""}, {"name": "Ivan"})
