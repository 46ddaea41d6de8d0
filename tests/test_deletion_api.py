"""Deleting and restoring through the API the inbox calls: the same gate and writer as always."""

from __future__ import annotations

import pytest

from helpdesk.conversations import actions
from helpdesk.conversations.models import Conversation, Message
from helpdesk.events.models import AuditEntry
from tests.conftest import login
from tests.helpers import count_queries, event_types, last_event_id

API = "/api/v1/conversations/"


def message_url(conversation_id: int, message_id: int, verb: str) -> str:
    return f"{API}{conversation_id}/messages/{message_id}/{verb}"


@pytest.fixture
def reply(cast):
    return actions.post_reply(cast.conversation, by=cast.bob, body="Wrong price: 10 EUR")


def nothing_changed(mark: int) -> bool:
    return event_types(after=mark) == [] and not AuditEntry.objects.exists()


def test_an_admin_deletes_a_message_and_gets_it_back_with_its_text(client, cast, reply):
    login(client, cast.alice)
    response = client.post(message_url(cast.conversation.pk, reply.pk, "delete"))
    assert response.status_code == 200
    data = response.json()
    assert (data["id"], data["deleted"], data["body"], data["deleted_by_name"]) == (
        reply.pk,
        True,
        "Wrong price: 10 EUR",
        "Alice",
    )
    reply.refresh_from_db()
    assert reply.deleted_by == cast.alice

    response = client.post(message_url(cast.conversation.pk, reply.pk, "restore"))
    assert response.status_code == 200
    assert (response.json()["deleted"], response.json()["body"]) == (False, "Wrong price: 10 EUR")
    reply.refresh_from_db()
    assert reply.deleted_at is None


def test_a_deleter_who_may_not_see_deleted_messages_gets_no_text_back(client, cast, reply):
    cast.bob.role.permissions = [*cast.bob.role.permissions, "delete_messages"]
    cast.bob.role.save()
    login(client, cast.bob)
    response = client.post(message_url(cast.conversation.pk, reply.pk, "delete"))
    assert response.status_code == 200
    assert (response.json()["deleted"], response.json()["body"]) == (True, "")


def test_an_agent_may_neither_delete_nor_restore_a_message(client, cast, reply):
    mark = last_event_id()
    login(client, cast.bob)
    assert client.post(message_url(cast.conversation.pk, reply.pk, "delete")).status_code == 403
    assert nothing_changed(mark)
    actions.delete_message(reply, by=cast.alice)
    mark = last_event_id()
    assert client.post(message_url(cast.conversation.pk, reply.pk, "restore")).status_code == 403
    reply.refresh_from_db()
    assert reply.deleted_at is not None and event_types(after=mark) == []


@pytest.mark.parametrize("verb", ["delete", "restore"])
def test_a_message_of_another_conversation_is_404(client, cast, reply, verb):
    other = actions.receive_message(channel=cast.widget, external_contact_id="visitor-2", body="Other chat")
    if verb == "restore":
        actions.delete_message(reply, by=cast.alice)
    mark, audit_rows = last_event_id(), AuditEntry.objects.count()
    login(client, cast.alice)
    # Both conversations are Alice's to see; the message still has to be in the one named.
    response = client.post(message_url(other.conversation_id, reply.pk, verb))
    assert response.status_code == 404
    assert client.post(message_url(cast.conversation.pk, 999_999, verb)).status_code == 404
    assert event_types(after=mark) == [] and AuditEntry.objects.count() == audit_rows


@pytest.mark.parametrize("who", ["carol", "erin"])
def test_a_conversation_of_another_company_or_outside_the_scope_is_404(client, cast, reply, who):
    employee = getattr(cast, who)
    if who == "erin":  # Erin may delete, but Sales' chats are not hers to see
        employee.role.permissions = [*employee.role.permissions, "delete_messages", "delete_conversations"]
        employee.role.save()
    mark = last_event_id()
    login(client, employee)
    assert client.post(message_url(cast.conversation.pk, reply.pk, "delete")).status_code == 404
    assert client.post(message_url(cast.conversation.pk, reply.pk, "restore")).status_code == 404
    assert client.post(f"{API}{cast.conversation.pk}/delete").status_code == 404
    assert nothing_changed(mark)
    reply.refresh_from_db()
    cast.conversation.refresh_from_db()
    assert reply.deleted_at is None and cast.conversation.deleted_at is None


def test_system_messages_cannot_be_deleted(client, cast):
    system = Message.objects.create(
        conversation=cast.conversation, channel=cast.widget, direction="internal", kind="system", body="Assigned"
    )
    login(client, cast.alice)
    response = client.post(message_url(cast.conversation.pk, system.pk, "delete"))
    assert response.status_code == 400 and response.json()["error"]["code"] == "system_message"


def test_deleting_a_conversation_moves_it_to_the_trash(client, cast):
    login(client, cast.bob)
    assert client.post(f"{API}{cast.conversation.pk}/delete").status_code == 403
    login(client, cast.alice)
    response = client.post(f"{API}{cast.conversation.pk}/delete")
    assert response.status_code == 200 and response.json()["deleted"] is True
    # It is gone from every list and page, and found in the Trash.
    assert client.get(f"{API}{cast.conversation.pk}/").status_code == 404
    trash = client.get("/api/v1/trash/").json()
    assert trash["count"] == 1
    row = trash["results"][0]
    assert (row["id"], row["deleted_by_name"]) == (cast.conversation.pk, "Alice") and row["deleted_at"]


def test_restoring_from_the_trash(client, cast):
    actions.delete_conversation(cast.conversation, by=cast.alice)
    login(client, cast.bob)
    assert client.get("/api/v1/trash/").status_code == 403
    assert client.post(f"/api/v1/trash/{cast.conversation.pk}/restore").status_code == 403
    login(client, cast.carol)
    assert client.get("/api/v1/trash/").json()["count"] == 0
    assert client.post(f"/api/v1/trash/{cast.conversation.pk}/restore").status_code == 404
    assert Conversation.objects.get(pk=cast.conversation.pk).deleted_at is not None
    login(client, cast.alice)
    response = client.post(f"/api/v1/trash/{cast.conversation.pk}/restore")
    assert response.status_code == 200 and response.json()["deleted"] is False
    assert client.get("/api/v1/trash/").json()["count"] == 0
    # A conversation that is not in the Trash can't be "restored" again.
    assert client.post(f"/api/v1/trash/{cast.conversation.pk}/restore").status_code == 404


def test_the_trash_respects_the_scope(client, cast):
    actions.delete_conversation(cast.conversation, by=cast.alice)  # a Sales chat
    erin = cast.erin
    erin.role.permissions = [*erin.role.permissions, "restore"]
    erin.role.save()
    login(client, erin)
    assert client.get("/api/v1/trash/").json()["count"] == 0
    assert client.post(f"/api/v1/trash/{cast.conversation.pk}/restore").status_code == 404


def test_the_trash_list_query_count_does_not_grow_with_rows(client, cast):
    login(client, cast.alice)
    actions.delete_conversation(cast.conversation, by=cast.alice)
    one = count_queries(lambda: client.get("/api/v1/trash/"))
    for i in range(5):
        message = actions.receive_message(channel=cast.widget, external_contact_id=f"bulk-{i}", body=f"hi {i}")
        actions.delete_conversation(message.conversation, by=cast.alice)
    assert count_queries(lambda: client.get("/api/v1/trash/")) == one
    assert client.get("/api/v1/trash/").json()["count"] == 6
