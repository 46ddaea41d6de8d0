"""Canned responses: the company's and one's own, their shortcuts, placeholders, the API and the page."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from helpdesk.conversations import actions, canned
from helpdesk.conversations.models import CannedResponse
from helpdesk.errors import ActionError
from helpdesk.events.models import AuditEntry
from tests.conftest import login
from tests.helpers import count_queries

API = "/api/v1/canned-responses/"


def company_wide(cast, shortcut: str = "hello", body: str = "Hello, {{contact.first_name}}!") -> CannedResponse:
    return canned.create_canned_response(
        by=cast.alice, shortcut=shortcut, title=shortcut.title(), body=body, company_wide=True
    )


def own(employee, shortcut: str = "hello", body: str = "Hi there") -> CannedResponse:
    return canned.create_canned_response(by=employee, shortcut=shortcut, title="Mine", body=body)


# --- Writing them --------------------------------------------------------------------------------------------


def test_company_wide_ones_need_manage_canned_and_are_audited(cast):
    with pytest.raises(PermissionDenied):
        canned.create_canned_response(by=cast.bob, shortcut="x", title="X", body="x", company_wide=True)
    shared = company_wide(cast)
    canned.update_canned_response(shared, by=cast.alice, shortcut="hello", title="Hello", body="Hi")
    canned.archive_canned_response(shared, by=cast.alice)
    actions_recorded = list(AuditEntry.objects.filter(object_type="cannedresponse").values_list("action", flat=True))
    assert actions_recorded == ["canned_response.created", "canned_response.updated", "canned_response.archived"]


def test_everyone_keeps_their_own_privately_and_unaudited(cast):
    mine = own(cast.bob, "thanks")
    assert mine.owner == cast.bob
    with pytest.raises(PermissionDenied):
        canned.update_canned_response(mine, by=cast.erin, shortcut="x", title="X", body="x")
    with pytest.raises(PermissionDenied):
        canned.archive_canned_response(mine, by=cast.alice)  # not even an admin edits someone's own
    canned.archive_canned_response(mine, by=cast.bob)
    assert not AuditEntry.objects.filter(object_type="cannedresponse").exists()


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"shortcut": ""}, "bad_shortcut"),
        ({"shortcut": "two words"}, "bad_shortcut"),
        ({"shortcut": "x" * 41}, "bad_shortcut"),
        ({"title": "  "}, "no_title"),
        ({"body": ""}, "no_body"),
        ({"body": "x" * 5001}, "too_long"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_saved(cast, fields, code):
    data = {"shortcut": "hello", "title": "Hello", "body": "Hi", **fields}
    with pytest.raises(ActionError) as refused:
        canned.create_canned_response(by=cast.bob, **data)
    assert refused.value.code == code
    assert not CannedResponse.objects.exists()


def test_shortcuts_are_lowercase_without_the_slash_and_russian_ones_work(cast):
    assert own(cast.bob, "/Delivery").shortcut == "delivery"
    assert own(cast.bob, "доставка").shortcut == "доставка"


def test_a_shortcut_is_unique_within_its_scope_only(cast):
    company_wide(cast, "hello")
    with pytest.raises(ActionError) as refused:
        company_wide(cast, "HELLO")
    assert refused.value.code == "duplicate_shortcut" and refused.value.field == "shortcut"
    own(cast.bob, "hello")  # a personal one may repeat the company's
    own(cast.erin, "hello")  # and a colleague's
    with pytest.raises(ActionError):
        own(cast.bob, "hello")
    # An archived one frees its shortcut.
    [bobs] = CannedResponse.objects.filter(owner=cast.bob)
    canned.archive_canned_response(bobs, by=cast.bob)
    own(cast.bob, "hello")


def test_renaming_onto_a_taken_shortcut_is_refused_and_changes_nothing(cast):
    company_wide(cast, "hello")
    other = company_wide(cast, "bye")
    with pytest.raises(ActionError):
        canned.update_canned_response(other, by=cast.alice, shortcut="hello", title="Bye", body="changed")
    other.refresh_from_db()
    assert (other.shortcut, other.body) == ("bye", "Hello, {{contact.first_name}}!")


def test_a_personal_shortcut_shadows_the_companys_in_ones_own_menu(cast):
    company_wide(cast, "hello")
    company_wide(cast, "bye")
    own(cast.bob, "hello", body="Bob's hello")
    own(cast.erin, "erins", body="Erin's own")
    assert [(r.shortcut, r.body) for r in canned.available(cast.bob)] == [
        ("bye", "Hello, {{contact.first_name}}!"),
        ("hello", "Bob's hello"),
    ]
    assert [r.shortcut for r in canned.available(cast.erin)] == ["bye", "erins", "hello"]
    assert [r.shortcut for r in canned.available(cast.carol)] == []


# --- Placeholders ---------------------------------------------------------------------------------------------


def values(**overrides) -> dict[str, str]:
    base = {
        "contact.name": "Anna Petrova",
        "contact.first_name": "Anna",
        "contact.email": "",
        "contact.phone": "",
        "agent.name": "Bob Smith",
        "agent.first_name": "Bob",
        "company.name": "Acme",
    }
    return {**base, **overrides}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "Hello, {{contact.first_name}}! I'm {{agent.first_name}} from {{company.name}}.",
            "Hello, Anna! I'm Bob from Acme.",
        ),
        ("{{ contact.name }} / {{agent.name}}", "Anna Petrova / Bob Smith"),
        ("Your order {{order.number}} is {{contact.first_name}}'s", "Your order {{order.number}} is Anna's"),
        (
            "Здравствуйте, {{contact.first_name}}!\nС уважением, {{agent.name}}",
            "Здравствуйте, Anna!\nС уважением, Bob Smith",
        ),
    ],
)
def test_known_placeholders_are_filled_and_unknown_ones_left_visible(body, expected):
    assert canned.render(body, values()) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hello, {{contact.first_name}}!", "Hello!"),
        ("Hi {{contact.first_name}}, thanks for writing.", "Hi, thanks for writing."),
        ("{{contact.first_name}}, thanks!\nЗдравствуйте, {{contact.name}}!", "thanks!\nЗдравствуйте!"),
        ("Mail: {{contact.email}}", "Mail:"),
    ],
)
def test_a_contact_without_a_name_leaves_no_dangling_comma(body, expected):
    assert canned.render(body, values(**{"contact.name": "", "contact.first_name": ""})) == expected


def test_values_come_from_the_contact_the_agent_and_the_company(cast):
    contact = cast.conversation.contact
    assert canned.placeholder_values(contact=contact, agent=cast.bob, company=cast.acme) == {
        "contact.name": "",  # a visitor who gave no name: empty, never "Visitor #1"
        "contact.first_name": "",
        "contact.email": "",
        "contact.phone": "",
        "agent.name": "Bob",
        "agent.first_name": "Bob",
        "company.name": "Acme",
    }


# --- The API for the "/" menu ------------------------------------------------------------------------------------


def test_the_menu_lists_ones_responses_filled_for_the_conversation(client, cast):
    company_wide(cast, "hello", body="Hello, {{contact.first_name}}! I'm {{agent.name}}.")
    own(cast.bob, "sig", body="— {{agent.first_name}}, {{company.name}}")
    actions.update_contact(cast.conversation.contact, by=cast.alice, name="Ирина Иванова")
    login(client, cast.bob)
    rows = client.get(API, {"conversation_id": cast.conversation.pk}).json()
    assert [(r["shortcut"], r["personal"], r["text"]) for r in rows] == [
        ("hello", False, "Hello, Ирина! I'm Bob."),
        ("sig", True, "— Bob, Acme"),
    ]
    assert client.get(API).json()[0]["text"] is None  # without a conversation nothing is filled


def test_the_menu_refuses_a_conversation_one_may_not_see(client, cast):
    company_wide(cast)
    login(client, cast.erin)  # Support does not see the Sales chat
    assert client.get(API, {"conversation_id": cast.conversation.pk}).status_code == 404
    login(client, cast.carol)
    assert client.get(API, {"conversation_id": cast.conversation.pk}).status_code == 404
    assert client.get(API).json() == []  # and Acme's responses are not Globex's
    assert client.get(API, {"conversation_id": "abc"}).status_code == 400


def test_the_menus_query_count_does_not_grow_with_the_list(client, cast):
    login(client, cast.bob)
    url = f"{API}?conversation_id={cast.conversation.pk}"
    client.get(url)
    before = count_queries(lambda: client.get(url))
    for n in range(5):
        company_wide(cast, f"c{n}")
        own(cast.bob, f"p{n}")
    assert count_queries(lambda: client.get(url)) == before


# --- The settings page ---------------------------------------------------------------------------------------------


def test_an_agent_sees_the_companys_read_only_and_adds_their_own(client, cast):
    company_wide(cast, "hello")
    login(client, cast.bob)
    page = client.get("/settings/canned-responses/")
    assert "scope" not in page.context["form"].fields  # only their own
    assert page.context["company_rows"][0].shortcut == "hello"
    response = client.post("/settings/canned-responses/", {"shortcut": "hello", "title": "My hello", "body": "Hey!"})
    assert response.status_code == 302
    mine = CannedResponse.objects.get(owner=cast.bob)
    assert mine.body == "Hey!"
    page = client.get("/settings/canned-responses/")
    assert page.context["mine"] == [{"row": mine, "shadows": True}]
    # A forged "whole company" is ignored: the field is not there for them.
    client.post("/settings/canned-responses/", {"shortcut": "x", "title": "X", "body": "x", "scope": "company"})
    assert CannedResponse.objects.get(shortcut="x").owner == cast.bob


def test_an_admin_adds_one_for_the_whole_company(client, cast):
    login(client, cast.alice)
    client.post(
        "/settings/canned-responses/", {"scope": "company", "shortcut": "hello", "title": "Hello", "body": "Hi!"}
    )
    assert CannedResponse.objects.get().owner is None


def test_the_page_shows_the_actions_refusal_on_its_field(client, cast):
    company_wide(cast, "hello")
    login(client, cast.alice)
    response = client.post(
        "/settings/canned-responses/", {"scope": "company", "shortcut": "hello", "title": "Again", "body": "Hi"}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"shortcut": ["The shortcut /hello is already used."]}
    assert CannedResponse.objects.count() == 1


def test_editing_and_archiving_on_the_page(client, cast):
    mine = own(cast.bob, "thanks")
    login(client, cast.bob)
    url = f"/settings/canned-responses/{mine.pk}/"
    assert client.get(url).status_code == 200
    assert client.post(url, {"shortcut": "thx", "title": "Thanks", "body": ""}).status_code == 200  # refused
    mine.refresh_from_db()
    assert mine.shortcut == "thanks"
    client.post(url, {"shortcut": "thx", "title": "Thanks", "body": "Thank you!"})
    mine.refresh_from_db()
    assert (mine.shortcut, mine.body) == ("thx", "Thank you!")
    client.post(f"/settings/canned-responses/{mine.pk}/archive/")
    mine.refresh_from_db()
    assert mine.archived_at is not None
    assert client.get(url).status_code == 404


def test_a_colleagues_own_response_is_a_404_and_the_companys_a_403_for_agents(client, cast):
    bobs = own(cast.bob, "thanks")
    shared = company_wide(cast)
    login(client, cast.erin)
    assert client.get(f"/settings/canned-responses/{bobs.pk}/").status_code == 404
    assert client.post(f"/settings/canned-responses/{bobs.pk}/archive/").status_code == 404
    assert client.get(f"/settings/canned-responses/{shared.pk}/").status_code == 403
    assert client.post(f"/settings/canned-responses/{shared.pk}/archive/").status_code == 403
    bobs.refresh_from_db()
    shared.refresh_from_db()
    assert bobs.archived_at is None and shared.archived_at is None
