"""The contact profile beside the conversation: what the inbox page carries, and live updates."""

from __future__ import annotations

from helpdesk.conversations import actions
from helpdesk.events.models import Event
from tests.conftest import login
from tests.helpers import count_queries, event_types, last_event_id


def profile(client, conversation) -> dict:
    return client.get(f"/inbox/{conversation.pk}/").context["state"]["contact"]


def test_the_inbox_page_carries_the_contacts_profile(client, cast):
    contact = cast.conversation.contact
    actions.update_contact(
        contact,
        by=cast.alice,
        name="Anna Petrova",
        email="anna@example.com",
        phone="+7 900 000-00-00",
        attributes={"plan": "gold", "orders": 3},
    )
    login(client, cast.bob)
    data = profile(client, cast.conversation)
    assert (data["name"], data["email"], data["phone"]) == ("Anna Petrova", "anna@example.com", "+7 900 000-00-00")
    assert data["attributes"] == {"plan": "gold", "orders": 3}
    assert data["identities"] == [{"channel_name": "Acme site", "channel_kind": "widget", "external_id": "visitor-1"}]
    assert data["blocked"] is False and data["conversations"] == []
    state = client.get(f"/inbox/{cast.conversation.pk}/").context["state"]
    assert (state["can"]["manageContacts"], state["can"]["blockContacts"]) == (True, False)


def test_other_conversations_are_only_the_ones_the_employee_may_see(client, cast):
    from helpdesk.conversations.models import Conversation

    contact = cast.conversation.contact
    # The same customer, earlier, in a Support conversation (Bob, in Sales, does not see it).
    support_chat = Conversation.objects.create(
        company=cast.acme, channel=cast.widget, contact=contact, team=cast.support, status="resolved"
    )
    sales_chat = Conversation.objects.create(
        company=cast.acme, channel=cast.widget, contact=contact, team=cast.sales, status="resolved"
    )
    login(client, cast.bob)
    assert [c["id"] for c in profile(client, cast.conversation)["conversations"]] == [sales_chat.pk]
    login(client, cast.alice)
    assert {c["id"] for c in profile(client, cast.conversation)["conversations"]} == {sales_chat.pk, support_chat.pk}


def test_the_profile_costs_the_same_queries_however_long_the_history(client, cast):
    from helpdesk.conversations.models import Conversation

    login(client, cast.alice)
    url = f"/inbox/{cast.conversation.pk}/"
    client.get(url)
    before = count_queries(lambda: client.get(url))
    for _ in range(5):
        Conversation.objects.create(
            company=cast.acme, channel=cast.widget, contact=cast.conversation.contact, status="resolved"
        )
    assert count_queries(lambda: client.get(url)) == before


def test_editing_a_contact_tells_every_conversation_of_theirs(cast):
    mark = last_event_id()
    actions.update_contact(cast.conversation.contact, by=cast.bob, name="Иван")
    assert event_types(after=mark) == ["contact.updated"]
    event = Event.objects.get(type="contact.updated")
    assert event.payload["conversation"]["contact_name"] == "Иван"  # list rows and headers follow
    assert event.payload["contact"]["name"] == "Иван"
    # Saving the same values again announces nothing.
    actions.update_contact(cast.conversation.contact, by=cast.bob, name="Иван")
    assert event_types(after=mark) == ["contact.updated"]


def test_the_contact_api_says_whether_the_contact_is_blocked(client, cast):
    login(client, cast.alice)
    url = f"/api/v1/contacts/{cast.conversation.contact_id}/"
    assert client.get(url).json()["blocked"] is False
    actions.block_contact(cast.conversation.contact, by=cast.alice, reason="Spam")
    body = client.get(url).json()
    assert (body["blocked"], body["blocked_until"], body["blocked_reason"]) == (True, None, "Spam")
