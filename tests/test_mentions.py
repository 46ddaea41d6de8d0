"""@mentions in internal notes: by id, only of people who can see the chat, and the Mentions view."""

from __future__ import annotations

import pytest
from django.urls import reverse

from helpdesk.accounts import services
from helpdesk.conversations import access, actions, queries
from helpdesk.conversations.models import Mention, Message
from helpdesk.errors import ActionError
from helpdesk.events.models import Event
from tests.conftest import login
from tests.helpers import count_queries, last_event_id
from tests.test_pages import page_state

API = "/api/v1/conversations/"


def note(client, conversation, body: str, mentions: dict | None = None):
    payload = {"body": body} if mentions is None else {"body": body, "mentions": mentions}
    return client.post(f"{API}{conversation.pk}/notes", payload, content_type="application/json")


def support_chat(cast):
    """A conversation of team Support: Erin's team sees it, Bob (Sales) does not."""
    conversation = actions.receive_message(
        channel=cast.widget, external_contact_id="visitor-s", body="Refund please"
    ).conversation
    actions.assign(conversation, by=cast.alice, team=cast.support)
    return conversation


# --- Who can be mentioned ---------------------------------------------------------------------------


def test_the_audience_is_exactly_who_the_gate_lets_see_the_conversation(cast):
    chats = [cast.conversation, support_chat(cast)]
    actions.assign(chats[0], by=cast.alice, assignee=cast.dave)
    for conversation in chats:
        audience = set(access.audience(conversation))
        seeing = {
            e
            for e in (cast.sam, cast.alice, cast.bob, cast.erin, cast.dave, cast.carol)
            if access.visible_conversations(e).filter(pk=conversation.pk).exists()
        }
        assert audience == seeing


def test_a_note_mentions_employees_and_teams_in_its_own_transaction(cast):
    mark = last_event_id()
    message = actions.add_note(
        cast.conversation,
        by=cast.alice,
        body="@Bob @Sales look",
        mention_employees=[cast.bob],
        mention_teams=[cast.sales],
    )
    rows = Mention.objects.filter(message=message)
    assert {(m.employee_id, m.team_id) for m in rows} == {(cast.bob.pk, None), (None, cast.sales.pk)}
    assert all(m.conversation_id == cast.conversation.pk for m in rows)
    created = Event.objects.get(id__gt=mark, type="message.created")
    assert created.payload["mentions"] == {"employee_ids": [cast.bob.pk], "team_ids": [cast.sales.pk]}


def test_a_note_without_mentions_carries_none(cast):
    mark = last_event_id()
    actions.add_note(cast.conversation, by=cast.alice, body="plain")
    assert "mentions" not in Event.objects.get(id__gt=mark, type="message.created").payload


def test_the_same_person_named_twice_is_mentioned_once(cast):
    message = actions.add_note(
        cast.conversation, by=cast.alice, body="@Bob @Bob", mention_employees=[cast.bob, cast.bob]
    )
    assert Mention.objects.filter(message=message).count() == 1


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("erin", "mention_out_of_scope"),  # team Support: can't see a Sales chat
        ("dave", "mention_out_of_scope"),  # sees only chats assigned to him
        ("support", "mention_out_of_scope"),  # nobody in Support can see it
        ("carol", "foreign"),  # another company
        ("deactivated", "inactive"),
    ],
)
def test_a_mention_that_would_reveal_the_chat_or_is_foreign_is_refused_and_changes_nothing(cast, who, code):
    if who == "deactivated":
        target = services.create_employee(
            company=cast.acme, email="x@acme.test", name="Xavier", role="admin", password="x" * 12
        )
        target.is_active = False
        target.save()
    else:
        target = getattr(cast, who)
    kwargs = {"mention_teams": [target]} if who == "support" else {"mention_employees": [target]}
    before = (Message.objects.count(), Mention.objects.count(), last_event_id())
    with pytest.raises(ActionError) as refused:
        actions.add_note(cast.conversation, by=cast.alice, body="psst", **kwargs)
    assert refused.value.code == code
    assert (Message.objects.count(), Mention.objects.count(), last_event_id()) == before


def test_a_team_is_mentioned_when_some_of_its_members_can_see_the_chat(cast):
    # Sales: Bob sees the chat through his team. A Support chat assigned to Bob: Support (Erin)
    # sees it, and so the team Sales can be mentioned there too, through Bob.
    chat = support_chat(cast)
    actions.assign(chat, by=cast.alice, assignee=cast.bob)
    message = actions.add_note(chat, by=cast.alice, body="@Sales", mention_teams=[cast.sales])
    assert Mention.objects.filter(message=message, team=cast.sales).exists()


# --- Through the API --------------------------------------------------------------------------------


def test_mentions_through_the_api_by_id(client, cast):
    login(client, cast.alice)
    response = note(client, cast.conversation, "@Bob please", {"employees": [cast.bob.pk], "teams": [cast.sales.pk]})
    assert response.status_code == 201
    message = Message.objects.get(pk=response.json()["id"])
    assert Mention.objects.filter(message=message).count() == 2


@pytest.mark.parametrize("field", ["employees", "teams"])
def test_another_companys_ids_answer_404_and_nothing_is_written(client, cast, field):
    foreign = cast.carol.pk if field == "employees" else services.create_team(company=cast.globex, name="Ops").pk
    login(client, cast.alice)
    before = (Message.objects.count(), last_event_id())
    assert note(client, cast.conversation, "psst", {field: [foreign]}).status_code == 404
    assert (Message.objects.count(), last_event_id()) == before


def test_an_out_of_scope_mention_is_a_400_that_says_why(client, cast):
    login(client, cast.alice)
    response = note(client, cast.conversation, "@Erin", {"employees": [cast.erin.pk]})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "mention_out_of_scope" and "Erin" in error["message"]
    assert not Message.objects.filter(body="@Erin").exists()


@pytest.mark.parametrize(
    "mentions",
    [{"employees": "bob"}, {"employees": ["x"]}, {"teams": [None]}, {"employees": list(range(1, 52))}, []],
)
def test_malformed_mentions_are_a_400(client, cast, mentions):
    login(client, cast.alice)
    response = note(client, cast.conversation, "psst", mentions)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
    assert not Message.objects.filter(body="psst").exists()


# --- The Mentions view -------------------------------------------------------------------------------


def test_the_mentions_view_lists_where_i_or_my_team_was_mentioned_newest_first(cast):
    other = actions.receive_message(channel=cast.widget, external_contact_id="visitor-2", body="Hi").conversation
    untouched = actions.receive_message(channel=cast.widget, external_contact_id="visitor-3", body="Hi").conversation
    actions.add_note(cast.conversation, by=cast.alice, body="@Bob", mention_employees=[cast.bob])
    actions.add_note(other, by=cast.alice, body="@Sales", mention_teams=[cast.sales])
    rows = list(queries.inbox(cast.bob, view="mentions"))
    assert [c.pk for c in rows] == [other.pk, cast.conversation.pk]
    assert untouched.pk not in [c.pk for c in rows]
    assert all(c.mention_unread for c in rows)
    # Erin was not mentioned; Alice wrote the notes herself.
    assert list(queries.inbox(cast.erin, view="mentions")) == []
    assert list(queries.inbox(cast.alice, view="mentions")) == []


def test_deleted_notes_and_ones_own_mentions_dont_count(cast):
    message = actions.add_note(cast.conversation, by=cast.alice, body="@Bob", mention_employees=[cast.bob])
    actions.add_note(cast.conversation, by=cast.bob, body="note to self @Sales", mention_teams=[cast.sales])
    actions.delete_message(message, by=cast.alice)
    assert list(queries.inbox(cast.bob, view="mentions")) == []


def test_a_mention_no_longer_shows_once_the_chat_is_out_of_scope(cast):
    actions.add_note(cast.conversation, by=cast.alice, body="@Bob", mention_employees=[cast.bob])
    actions.assign(cast.conversation, by=cast.alice, team=cast.support)
    assert list(queries.inbox(cast.bob, view="mentions")) == []
    assert queries.counts(cast.bob)["mentions"] == 0


def test_the_unread_mention_count_clears_when_the_chat_is_read(cast):
    actions.add_note(cast.conversation, by=cast.alice, body="@Bob", mention_employees=[cast.bob])
    assert queries.counts(cast.bob)["mentions"] == 1
    actions.mark_read(cast.conversation, employee=cast.bob)
    assert queries.counts(cast.bob)["mentions"] == 0
    # Still listed under Mentions, just not unread any more.
    assert [c.mention_unread for c in queries.inbox(cast.bob, view="mentions")] == [False]


def test_the_mentions_view_through_the_api(client, cast):
    actions.add_note(cast.conversation, by=cast.alice, body="@Bob", mention_employees=[cast.bob])
    login(client, cast.bob)
    data = client.get(API, {"view": "mentions"}).json()
    assert [c["id"] for c in data["results"]] == [cast.conversation.pk]
    login(client, cast.erin)
    assert client.get(API, {"view": "mentions"}).json()["count"] == 0


def test_the_mentions_page_and_its_count(client, cast):
    actions.add_note(cast.conversation, by=cast.alice, body="@Bob", mention_employees=[cast.bob])
    login(client, cast.bob)
    response = client.get(reverse("web:inbox"), {"view": "mentions"})
    state = page_state(response)
    [row] = state["conversations"]
    assert row["id"] == cast.conversation.pk and row["mention_unread"] is True
    assert row["last_mention_message_id"] == Mention.objects.get().message_id
    assert 'data-view-count="mentions">1<' in response.content.decode()


def test_the_mentions_page_query_count_is_flat(client, cast):
    login(client, cast.bob)
    url = reverse("web:inbox")
    client.get(url, {"view": "mentions"})
    actions.add_note(cast.conversation, by=cast.alice, body="@Bob", mention_employees=[cast.bob])
    one = count_queries(lambda: client.get(url, {"view": "mentions"}))
    for i in range(5):
        chat = actions.receive_message(channel=cast.widget, external_contact_id=f"m{i}", body="hi").conversation
        actions.add_note(chat, by=cast.alice, body="@Sales", mention_teams=[cast.sales])
    assert count_queries(lambda: client.get(url, {"view": "mentions"})) == one
    assert len(page_state(client.get(url, {"view": "mentions"}))["conversations"]) == 6


def test_the_note_box_offers_only_people_and_teams_who_can_see_the_chat(client, cast):
    login(client, cast.bob)
    state = page_state(client.get(reverse("web:conversation", args=[cast.conversation.pk])))
    names = {e["name"] for e in state["mentionable"]["employees"]}
    assert names == {"Sam", "Alice"}  # not Bob himself, not Erin (Support) nor Dave (assigned only)
    assert [t["name"] for t in state["mentionable"]["teams"]] == ["Sales"]


# --- The sidebar's counts -----------------------------------------------------------------------------

COUNTS = "/api/v1/conversations/counts"


def test_the_counts_endpoint_answers_what_the_sidebar_shows(client, cast):
    actions.add_note(cast.conversation, by=cast.alice, body="@Bob", mention_employees=[cast.bob])
    login(client, cast.bob)
    assert client.get(COUNTS).json() == {"mine": 0, "unassigned": 1, "all": 1, "mentions": 1}
    assert client.get(COUNTS, {"status": "snoozed"}).json() == {"mine": 0, "unassigned": 0, "all": 0, "mentions": 0}
    login(client, cast.carol)  # another company: her own numbers, nothing of Acme's
    assert client.get(COUNTS).json() == {"mine": 0, "unassigned": 0, "all": 0, "mentions": 0}


def test_a_bad_status_for_the_counts_is_a_400(client, cast):
    login(client, cast.bob)
    response = client.get(COUNTS, {"status": "sleeping"})
    assert response.status_code == 400 and "status" in response.json()["error"]["fields"]


def test_the_counts_query_count_is_flat(client, cast):
    login(client, cast.alice)
    client.get(COUNTS)
    one = count_queries(lambda: client.get(COUNTS))
    for i in range(5):
        chat = actions.receive_message(channel=cast.widget, external_contact_id=f"c{i}", body="hi").conversation
        actions.add_note(chat, by=cast.bob, body="@Alice", mention_employees=[cast.alice])
    assert count_queries(lambda: client.get(COUNTS)) == one
    assert client.get(COUNTS).json()["mentions"] == 5
