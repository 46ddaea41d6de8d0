"""Nothing is destroyed: deleted messages and conversations are marked, shown to admins, restorable."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied

from helpdesk.conversations import access, actions, queries
from helpdesk.conversations.models import Conversation, Message
from helpdesk.events.models import AuditEntry
from helpdesk.realtime.catchup import events_after
from tests.helpers import event_types, last_event_id
from tests.test_sockets import QUIET, connected_agent, connected_widget, events_received


def test_deleting_a_message_keeps_it_with_who_and_when(cast):
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="Wrong price: 10 EUR")
    mark = last_event_id()
    actions.delete_message(reply, by=cast.alice)
    reply.refresh_from_db()
    assert reply.deleted_at and reply.deleted_by == cast.alice and reply.body == "Wrong price: 10 EUR"
    assert event_types(after=mark) == ["message.deleted"]
    entry = AuditEntry.objects.get(action="message.deleted")
    assert (entry.actor_id, entry.object_id) == (cast.alice.pk, str(reply.pk))
    # Deleting twice changes nothing more.
    actions.delete_message(reply, by=cast.alice)
    assert event_types(after=mark) == ["message.deleted"]


def test_the_deletion_event_carries_no_text(cast):
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="secret-ish")
    actions.delete_message(reply, by=cast.alice)
    event = cast.conversation.events.order_by("-id").first()
    assert event.payload["message"]["body"] == "" and event.payload["message"]["deleted_by_name"] == "Alice"


def test_admins_see_the_text_of_deleted_messages_and_agents_do_not(cast):
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="Wrong price")
    actions.delete_message(reply, by=cast.alice)
    from helpdesk.conversations.snapshots import message_data

    for employee, body in ((cast.alice, "Wrong price"), (cast.bob, "")):
        shown = [
            message_data(m, reveal_deleted=access.sees_deleted(employee)) for m in queries.thread(cast.conversation)
        ]
        assert shown[-1]["deleted"] is True and shown[-1]["body"] == body


def test_catch_up_drops_the_text_of_messages_deleted_since(cast):
    mark = last_event_id()
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="Oops, wrong chat")
    actions.delete_message(reply, by=cast.alice)
    for employee, expected in ((cast.bob, ""), (cast.alice, "Oops, wrong chat")):
        events, _ = events_after(employee, mark)
        (created,) = [e for e in events if e["type"] == "message.created" and e["payload"]["message"]["id"] == reply.pk]
        assert created["payload"]["message"]["body"] == expected


def test_restoring_a_message_brings_it_back(cast):
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="It was right after all")
    actions.delete_message(reply, by=cast.alice)
    actions.restore_message(reply, by=cast.alice)
    reply.refresh_from_db()
    assert reply.deleted_at is None and reply.deleted_by is None
    assert event_types(cast.conversation)[-2:] == ["message.deleted", "message.restored"]


def test_agents_may_neither_delete_nor_restore(cast):
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="x")
    with pytest.raises(PermissionDenied):
        actions.delete_message(reply, by=cast.bob)
    actions.delete_message(reply, by=cast.alice)
    with pytest.raises(PermissionDenied):
        actions.restore_message(reply, by=cast.bob)
    with pytest.raises(PermissionDenied):
        actions.delete_conversation(cast.conversation, by=cast.bob)


def test_a_deleted_conversation_goes_to_the_trash_and_back(cast):
    actions.delete_conversation(cast.conversation, by=cast.alice)
    assert not access.visible_conversations(cast.alice).filter(pk=cast.conversation.pk).exists()
    assert list(access.trash(cast.alice)) == [cast.conversation]
    with pytest.raises(PermissionDenied):
        access.trash(cast.bob)
    actions.restore_conversation(cast.conversation, by=cast.alice)
    assert access.visible_conversations(cast.bob).filter(pk=cast.conversation.pk).exists()
    assert not access.trash(cast.alice).exists()
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("id")) == [
        "conversation.deleted",
        "conversation.restored",
    ]


def test_a_customer_writing_to_a_deleted_conversation_opens_a_new_one(cast):
    actions.delete_conversation(cast.conversation, by=cast.alice)
    message = actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="Hello again")
    assert message.conversation_id != cast.conversation.pk
    assert Conversation.objects.filter(contact=cast.conversation.contact).count() == 2
    assert Message.objects.filter(conversation=cast.conversation).count() == 1  # the old one is untouched


@pytest.mark.django_db(transaction=True)
async def test_a_deleted_conversation_leaves_every_inbox_live(tcast):
    bob = await connected_agent(tcast.bob)
    await database_sync_to_async(actions.delete_conversation)(tcast.conversation, by=tcast.alice)
    (event,) = await events_received(bob)
    assert (event["type"], event["visible"]) == ("conversation.deleted", False)
    await database_sync_to_async(actions.restore_conversation)(tcast.conversation, by=tcast.alice)
    (event,) = await events_received(bob)
    assert (event["type"], event["visible"]) == ("conversation.restored", True)
    await bob.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_deleted_reply_disappears_from_the_visitors_chat(tcast):
    visitor = await connected_widget(tcast.widget)
    reply = await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.bob, body="wrong")
    assert (await visitor.receive_json_from())["message"]["body"] == "wrong"
    await database_sync_to_async(actions.delete_message)(reply, by=tcast.alice)
    assert await visitor.receive_json_from() == {"type": "removed", "message_id": reply.pk}
    await database_sync_to_async(actions.restore_message)(reply, by=tcast.alice)
    assert (await visitor.receive_json_from())["message"]["id"] == reply.pk
    assert await visitor.receive_nothing(timeout=QUIET)
    await visitor.disconnect()


def test_the_list_preview_never_shows_a_deleted_message(cast):
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="Your card number is wrong")
    cast.conversation.refresh_from_db()
    assert cast.conversation.last_message_preview == "Your card number is wrong"
    actions.delete_message(reply, by=cast.alice)
    cast.conversation.refresh_from_db()
    # The newest message still standing: the customer's question.
    assert cast.conversation.last_message_preview == "Hello, is my order shipped?"
    event = cast.conversation.events.order_by("-id").first()
    assert event.payload["conversation"]["preview"] == "Hello, is my order shipped?"
    actions.restore_message(reply, by=cast.alice)
    cast.conversation.refresh_from_db()
    assert cast.conversation.last_message_preview == "Your card number is wrong"


def test_deleting_a_note_or_an_older_message_leaves_the_preview_alone(cast):
    note = actions.add_note(cast.conversation, by=cast.bob, body="psst")
    actions.post_reply(cast.conversation, by=cast.bob, body="Shipped today")
    actions.delete_message(note, by=cast.alice)
    actions.delete_message(cast.first_message, by=cast.alice)
    cast.conversation.refresh_from_db()
    assert cast.conversation.last_message_preview == "Shipped today"


def test_catch_up_drops_a_deleted_message_from_older_list_previews(cast):
    mark = last_event_id()
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="Oops, wrong chat")
    actions.assign(cast.conversation, by=cast.alice, assignee=cast.bob)  # its snapshot still shows the reply
    actions.delete_message(reply, by=cast.alice)
    # The list never previews a deleted message, not even for those who may read it in the thread.
    for employee in (cast.bob, cast.alice):
        events, _ = events_after(employee, mark)
        previews = [e["payload"]["conversation"]["preview"] for e in events]
        assert "Oops, wrong chat" not in previews
        assert previews[-1] == "Hello, is my order shipped?"


def test_a_deleted_customer_message_no_longer_counts_as_unread(cast):
    second = actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="spam link")
    row = lambda: queries.inbox(cast.bob, view="all").get(pk=cast.conversation.pk)  # noqa: E731
    assert row().unread == 2
    actions.delete_message(second, by=cast.alice)
    assert row().unread == 1
