"""Blocking contacts: their messages are kept but open, notify and route nothing, until the block ends."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from helpdesk.conversations import actions, quick_answers
from helpdesk.conversations.models import Contact, Conversation, Message, Status
from helpdesk.conversations.snapshots import message_data
from helpdesk.errors import ActionError
from helpdesk.events.models import AuditEntry, Event
from tests.conftest import login
from tests.helpers import count_queries, event_types, last_event_id


def later(**delta) -> datetime:
    return timezone.now() + timedelta(**delta)


def write(cast, body: str, visitor: str = "visitor-1") -> Message:
    return actions.receive_message(channel=cast.widget, external_contact_id=visitor, body=body)


# --- The actions ------------------------------------------------------------------------------------------------


def test_blocking_needs_the_permission(cast):
    with pytest.raises(PermissionDenied):
        actions.block_contact(cast.conversation.contact, by=cast.bob, reason="Spam")
    assert not Contact.objects.filter(blocked_at__isnull=False).exists()


@pytest.mark.parametrize(
    ("until", "reason", "code"),
    [
        ("past", "Spam", "past"),
        (None, "   ", "no_reason"),
        (None, "x" * 501, "too_long"),
    ],
)
def test_bad_blocks_are_refused_and_change_nothing(cast, until, reason, code):
    contact = cast.conversation.contact
    with pytest.raises(ActionError) as refused:
        actions.block_contact(
            contact, by=cast.alice, until=later(minutes=-1) if until == "past" else until, reason=reason
        )
    assert refused.value.code == code
    contact.refresh_from_db()
    assert contact.blocked_at is None and not contact.is_blocked()
    assert not AuditEntry.objects.filter(action="contact.blocked").exists()


def test_another_companys_admin_cannot_block_our_contact(cast):
    with pytest.raises(ActionError):
        actions.block_contact(cast.conversation.contact, by=cast.carol, reason="Spam")


def test_blocking_and_unblocking_are_audited_and_announced(cast):
    contact = cast.conversation.contact
    mark = last_event_id()
    until = later(days=7)
    actions.block_contact(contact, by=cast.alice, until=until, reason="Rude  language")
    contact.refresh_from_db()
    assert contact.is_blocked() and contact.blocked_reason == "Rude language" and contact.blocked_by == cast.alice
    actions.unblock_contact(contact, by=cast.alice)
    contact.refresh_from_db()
    assert not contact.is_blocked() and contact.blocked_at is None and contact.blocked_reason == ""
    entries = list(AuditEntry.objects.filter(object_type="contact").order_by("id"))
    assert [e.action for e in entries] == ["contact.blocked", "contact.unblocked"]
    assert entries[0].after == {"blocked_until": until.isoformat(), "blocked_reason": "Rude language"}
    # Open inboxes hear of it (the profile panel shows the block).
    assert event_types(after=mark) == ["contact.updated", "contact.updated"]
    blocked_event = Event.objects.filter(type="contact.updated").order_by("id").first()
    assert blocked_event.payload["contact"]["blocked"] is True
    assert blocked_event.payload["contact"]["blocked_by_name"] == "Alice"


def test_unblocking_someone_not_blocked_changes_nothing(cast):
    actions.unblock_contact(cast.conversation.contact, by=cast.alice)
    assert not AuditEntry.objects.filter(action="contact.unblocked").exists()


# --- Their messages ------------------------------------------------------------------------------------------------


def test_a_blocked_contacts_message_is_kept_in_their_conversation_and_reopens_nothing(cast):
    conversation = cast.conversation
    actions.resolve(conversation, by=cast.bob)
    actions.block_contact(conversation.contact, by=cast.alice, reason="Spam")
    conversation.refresh_from_db()
    before = (conversation.status, conversation.last_activity_at, conversation.last_message_preview)
    mark = last_event_id()
    message = write(cast, "BUY CHEAP WATCHES")
    assert message.conversation_id == conversation.pk and message.while_blocked
    conversation.refresh_from_db()
    assert (conversation.status, conversation.last_activity_at, conversation.last_message_preview) == before
    assert event_types(after=mark) == []  # no socket, list, badge or delivery hears of it


def test_an_open_conversation_stays_as_it_was_and_counts_no_unread(cast):
    from helpdesk.conversations import queries

    actions.mark_read(cast.conversation, employee=cast.bob)
    actions.block_contact(cast.conversation.contact, by=cast.alice, reason="Spam")
    write(cast, "spam")
    cast.conversation.refresh_from_db()
    before = (cast.conversation.status, cast.conversation.waiting_since, cast.conversation.last_message_preview)
    [row] = queries.inbox(cast.bob, view="unassigned")
    assert row.unread == 0
    assert (row.status, row.waiting_since, row.last_message_preview) == before


def test_with_no_conversation_yet_it_is_kept_in_a_new_one_that_starts_resolved(cast):
    first = write(cast, "hello", visitor="troll")
    contact = first.conversation.contact
    actions.delete_conversation(first.conversation, by=cast.alice)  # nothing left to put it in
    actions.block_contact(contact, by=cast.alice, reason="Trolling")
    mark = last_event_id()
    message = write(cast, "hello again", visitor="troll")
    conversation = message.conversation
    assert conversation.pk != first.conversation_id
    assert (conversation.status, conversation.assignee_id, conversation.contact_id) == (
        Status.RESOLVED,
        None,
        contact.pk,
    )
    assert event_types(after=mark) == []


def test_a_blocked_contact_gets_no_quick_answer(cast):
    quick_answers.create_quick_answer(by=cast.alice, title="Hours", triggers="opening hours", answer="9 to 6")
    actions.block_contact(cast.conversation.contact, by=cast.alice, reason="Spam")
    write(cast, "opening hours")
    assert not Message.objects.filter(automatic=True).exists()


def test_a_blocked_message_is_still_idempotent(cast):
    actions.block_contact(cast.conversation.contact, by=cast.alice, reason="Spam")
    once = actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="x", external_id="w:b")
    again = actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="x", external_id="w:b")
    assert once.pk == again.pk and Message.objects.filter(external_id="w:b").count() == 1


def test_the_block_ends_by_itself(cast):
    contact = cast.conversation.contact
    actions.block_contact(contact, by=cast.alice, until=later(hours=1), reason="Cool down")
    actions.resolve(cast.conversation, by=cast.bob)
    assert write(cast, "still angry").while_blocked
    # An hour later, with no task run: the next message reopens the conversation as usual.
    Contact.objects.filter(pk=contact.pk).update(blocked_until=later(seconds=-1))
    mark = last_event_id()
    message = write(cast, "sorry about that")
    assert not message.while_blocked
    assert event_types(after=mark) == ["conversation.reopened", "message.created"]


def test_the_thread_marks_what_arrived_while_blocked(cast, client):
    actions.block_contact(cast.conversation.contact, by=cast.alice, reason="Spam")
    message = write(cast, "spam")
    assert message_data(message)["while_blocked"] is True
    login(client, cast.alice)
    shown = client.get(f"/inbox/{cast.conversation.pk}/").context["state"]["messages"]
    assert [(m["body"], m["while_blocked"]) for m in shown] == [
        ("Hello, is my order shipped?", False),
        ("spam", True),
    ]


# --- The API ------------------------------------------------------------------------------------------------------


def block_url(contact) -> str:
    return f"/api/v1/contacts/{contact.pk}/block"


def test_the_api_blocks_for_a_period_and_unblocks(client, cast):
    contact = cast.conversation.contact
    login(client, cast.alice)
    until = later(days=1).replace(microsecond=0)
    answer = client.post(block_url(contact), {"until": until.isoformat(), "reason": "Spam"}, "application/json")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["blocked"], body["blocked_reason"], body["blocked_by_name"]) == (True, "Spam", "Alice")
    assert body["blocked_until"] == until.isoformat()
    answer = client.post(f"/api/v1/contacts/{contact.pk}/unblock", {}, "application/json")
    assert answer.json()["blocked"] is False


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"until": "2000-01-01T00:00:00Z", "reason": "Spam"}, "past"),
        ({"until": "soon", "reason": "Spam"}, "invalid"),
        ({"reason": ""}, "no_reason"),
        ({}, "invalid"),
    ],
)
def test_the_api_refuses_a_bad_block(client, cast, data, code):
    login(client, cast.alice)
    answer = client.post(block_url(cast.conversation.contact), data, "application/json")
    assert answer.status_code == 400 and answer.json()["error"]["code"] == code
    assert not Contact.objects.filter(blocked_at__isnull=False).exists()


def test_the_api_keeps_another_companys_contact_out_of_reach(client, cast):
    login(client, cast.carol)
    assert client.post(block_url(cast.conversation.contact), {"reason": "x"}, "application/json").status_code == 404
    login(client, cast.bob)  # agents don't block
    assert client.post(block_url(cast.conversation.contact), {"reason": "x"}, "application/json").status_code == 403
    assert not Contact.objects.filter(blocked_at__isnull=False).exists()


# --- Settings → Blocked contacts ------------------------------------------------------------------------------------


def test_the_list_shows_blocks_in_force_and_hides_the_ones_that_ended(client, cast):
    rude = cast.conversation.contact
    actions.block_contact(rude, by=cast.alice, until=later(days=7), reason="Rude")
    ended = write(cast, "hi", visitor="v-ended").conversation.contact
    actions.block_contact(ended, by=cast.sam, until=later(hours=1), reason="Old")
    Contact.objects.filter(pk=ended.pk).update(blocked_until=later(seconds=-1))
    forever = write(cast, "hi", visitor="v-forever").conversation.contact
    actions.block_contact(forever, by=cast.sam, reason="Bot")
    login(client, cast.alice)
    response = client.get("/settings/blocked-contacts/")
    rows = list(response.context["page"])
    assert [c.pk for c in rows] == [forever.pk, rude.pk]
    page = response.content.decode()
    assert "Rude" in page and "Bot" in page and "until unblocked" in page and "Old" not in page
    assert rows[1].latest_conversation_id == cast.conversation.pk


def test_the_list_query_count_does_not_grow(client, cast):
    login(client, cast.alice)
    actions.block_contact(cast.conversation.contact, by=cast.alice, reason="One")
    before = count_queries(lambda: client.get("/settings/blocked-contacts/"))
    for n in range(4):
        contact = write(cast, "hi", visitor=f"v{n}").conversation.contact
        actions.block_contact(contact, by=cast.sam, reason=f"Reason {n}")
    assert count_queries(lambda: client.get("/settings/blocked-contacts/")) == before


def test_unblocking_from_the_list(client, cast):
    contact = cast.conversation.contact
    actions.block_contact(contact, by=cast.alice, reason="Spam")
    login(client, cast.alice)
    response = client.post(f"/settings/blocked-contacts/{contact.pk}/unblock/")
    assert response.status_code == 302
    contact.refresh_from_db()
    assert not contact.is_blocked()


def test_a_narrow_scope_lists_only_contacts_it_can_see(client, cast):
    from helpdesk.accounts import actions as admin_actions
    from helpdesk.accounts.models import Scope

    role = admin_actions.create_role(by=cast.sam, name="Moderator", permissions=["block_contacts"], scope=Scope.TEAMS)
    admin_actions.update_employee(cast.erin, by=cast.sam, name="Erin", role=role, teams=[cast.support], capacity=10)
    actions.block_contact(cast.conversation.contact, by=cast.alice, reason="Spam")  # a Sales chat
    login(client, cast.erin)
    assert list(client.get("/settings/blocked-contacts/").context["page"]) == []
    assert client.post(f"/settings/blocked-contacts/{cast.conversation.contact_id}/unblock/").status_code == 404
    assert Conversation.objects.get(pk=cast.conversation.pk).contact.is_blocked()
