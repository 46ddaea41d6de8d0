"""One shape for every channel: the normalised inbound message, and a second adapter beside the widget.

A made-up kind, "pigeon", is registered for these tests only, with its own ``socket_sends``
and ``typing_sends``. Its conversations' events reach it through the real fan-out and the
process's real relay (which reads the event log); the widget's never do, and the widget never
hears of the pigeon's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async

from helpdesk.conversations import actions, adapters
from helpdesk.conversations.inbound import ContactProfile, InboundAttachment, InboundMessage
from helpdesk.conversations.models import Channel, Contact, Conversation, Message
from helpdesk.events.models import Event
from helpdesk.realtime import relay
from integrations import outbound
from integrations.outbound import customer_effect
from integrations.widget.visitors import visitor_group
from tests.helpers import event_types, last_event_id

QUIET = 0.3  # seconds a group must stay silent to count as "received nothing"


@dataclass
class PigeonAdapter(adapters.Adapter):
    seen: list[dict[str, Any]] = field(default_factory=list)

    def socket_sends(self, event):
        self.seen.append(event)
        effect = customer_effect(event)
        if effect is None:
            return []
        conversation = event["payload"]["conversation"]
        return [(f"pigeon-{conversation['id']}", {"type": "pigeon.message", "body": effect[1]["body"]})]

    def typing_sends(self, conversation, *, name, typing):
        return [(f"pigeon-{conversation.pk}", {"type": "pigeon.typing", "name": name, "typing": typing})]


@pytest.fixture
def pigeon(monkeypatch) -> PigeonAdapter:
    adapter = PigeonAdapter(kind="pigeon", label="Pigeon post")
    monkeypatch.setitem(adapters._registry, "pigeon", adapter)
    return adapter


def pigeon_channel(company) -> Channel:
    return Channel.objects.create(company=company, kind="pigeon", name="Loft")


# --- A second adapter -------------------------------------------------------------------


class _Socket:
    """A local socket as the relay sees one: it is handed each message of its groups."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def relay_message(self, message: dict[str, Any]) -> None:
        self.received.put_nowait(message)


async def _next(socket: _Socket) -> dict[str, Any] | None:
    try:
        return await asyncio.wait_for(socket.received.get(), timeout=QUIET)
    except TimeoutError:
        return None


@pytest.mark.django_db(transaction=True)
async def test_a_second_adapter_gets_its_conversations_events_and_none_of_the_widgets(tcast, pigeon):
    loft = await database_sync_to_async(pigeon_channel)(tcast.acme)
    message = await database_sync_to_async(actions.receive_inbound)(
        channel=loft, message=InboundMessage(external_contact_id="p-1", text="Coo", external_id="p:1")
    )
    conversation = await database_sync_to_async(Conversation.objects.get)(pk=message.conversation_id)
    pigeon_socket, visitor_socket = _Socket(), _Socket()
    relays = [
        await relay.join(pigeon_socket, [f"pigeon-{conversation.pk}"]),
        await relay.join(visitor_socket, [visitor_group(tcast.widget.pk, "visitor-1")]),
    ]
    try:
        await _hear_the_pigeon(tcast, pigeon, conversation, pigeon_socket, visitor_socket)
    finally:
        await relay.leave(pigeon_socket, relays[0])
        await relay.leave(visitor_socket, relays[1])


async def _hear_the_pigeon(tcast, pigeon, conversation, pigeon_socket, visitor_socket) -> None:
    pigeon.seen.clear()

    # An agent's reply in the pigeon's conversation reaches the pigeon, and no widget visitor.
    await database_sync_to_async(actions.post_reply)(conversation, by=tcast.alice, body="Coo back")
    assert await _next(pigeon_socket) == {"type": "pigeon.message", "body": "Coo back"}
    assert await _next(visitor_socket) is None

    # A note never reaches the adapter at all: core keeps it inside.
    await database_sync_to_async(actions.add_note)(conversation, by=tcast.alice, body="Internal only")
    assert await _next(pigeon_socket) is None
    assert all(e["payload"].get("message", {}).get("body") != "Internal only" for e in pigeon.seen)

    # A reply in the widget's conversation reaches the visitor, and the pigeon never hears of it.
    seen_before = len(pigeon.seen)
    await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.alice, body="Widget answer")
    pushed = await _next(visitor_socket)
    assert pushed["type"] == "visitor.message" and pushed["message"]["body"] == "Widget answer"
    assert await _next(pigeon_socket) is None
    assert all(e["conversation_id"] == conversation.pk for e in pigeon.seen)
    assert len(pigeon.seen) == seen_before

    # Typing follows the conversation's channel too.
    typing = await database_sync_to_async(
        lambda: outbound.typing_sends(
            Conversation.objects.select_related("channel").get(pk=conversation.pk), name="Alice", typing=True
        )
    )()
    assert typing == [(f"pigeon-{conversation.pk}", {"type": "pigeon.typing", "name": "Alice", "typing": True})]


def test_an_unregistered_kind_is_a_clear_error_not_a_silent_drop(cast):
    channel = pigeon_channel(cast.acme)
    message = actions.receive_inbound(channel=channel, message=InboundMessage(external_contact_id="p-1", text="Coo"))
    with pytest.raises(LookupError, match="no adapter registered for channel kind 'pigeon'"):
        outbound.typing_sends(message.conversation, name="Alice", typing=True)


def test_the_widget_is_registered_by_its_app():
    widget = adapters.adapter_for("widget")
    assert type(widget).__name__ == "WidgetAdapter" and widget.website_snippet and not widget.delivers


# --- The normalised inbound message -----------------------------------------------------


def test_a_new_contact_gets_the_profile_the_provider_gave(cast, pigeon):
    channel = pigeon_channel(cast.acme)
    profile = ContactProfile(
        name="Anna Petrova",
        username="anna_p",
        language="ru",
        avatar_url="https://t.me/i/anna.jpg",
        extra={"premium": True},
    )
    message = actions.receive_inbound(
        channel=channel, message=InboundMessage(external_contact_id="42", text="Привет", profile=profile)
    )
    contact = message.author_contact
    assert (contact.name, message.body, message.conversation.contact_id) == ("Anna Petrova", "Привет", contact.pk)
    assert contact.attributes == {
        "username": "anna_p",
        "language": "ru",
        "avatar_url": "https://t.me/i/anna.jpg",
        "premium": True,
    }
    # A known contact is not rewritten by what a later update says (an agent may have edited it).
    later = ContactProfile(name="Someone else")
    again = actions.receive_inbound(
        channel=channel, message=InboundMessage(external_contact_id="42", text="Ещё", profile=later)
    )
    assert again.author_contact_id == contact.pk
    assert Contact.objects.get(pk=contact.pk).name == "Anna Petrova"


def test_provider_extras_that_dont_fit_never_lose_the_message(cast, pigeon, caplog):
    channel = pigeon_channel(cast.acme)
    profile = ContactProfile(name="Bad\x00Name", username="ok", extra={"nested": {"not": "flat"}})
    with caplog.at_level(logging.WARNING):
        message = actions.receive_inbound(
            channel=channel, message=InboundMessage(external_contact_id="43", text="Hi", profile=profile)
        )
    assert message.author_contact.name == "BadName"  # a NUL can't be stored: dropped, not refused
    assert message.author_contact.attributes == {"username": "ok"}
    assert "inbound profile extras dropped: bad_attributes (nested)" in caplog.text


def test_attachments_become_pending_files_of_the_message_and_the_text_is_the_customers(cast, pigeon):
    channel = pigeon_channel(cast.acme)
    photo = InboundAttachment(file_id="AgAD1", name="cat.jpg", mime_type="image/jpeg", size=52_000, kind="photo")
    voice = InboundAttachment(file_id="AwAD2", kind="voice", mime_type="audio/ogg", size=700)
    message = actions.receive_inbound(
        channel=channel,
        message=InboundMessage(external_contact_id="44", text=" Look ", attachments=[photo, voice], external_id="a:1"),
    )
    assert message.body == "Look"
    files = list(message.attachments.order_by("pk"))
    assert [(f.name, f.status, f.size, f.file.name) for f in files] == [
        ("cat.jpg", "pending", 52_000, ""),
        ("voice", "pending", 700, ""),
    ]
    assert files[0].source == {
        "file_id": "AgAD1",
        "name": "cat.jpg",
        "mime_type": "image/jpeg",
        "size": 52_000,
        "kind": "photo",
    }
    event = Event.objects.filter(type="message.created").latest("id")
    assert [(f["name"], f["status"], f["url"]) for f in event.payload["message"]["attachments"]] == [
        ("cat.jpg", "pending", None),
        ("voice", "pending", None),
    ]
    # A file with no text is a message too; the list's preview names it.
    only = actions.receive_inbound(
        channel=channel, message=InboundMessage(external_contact_id="44", attachments=[photo], external_id="a:2")
    )
    assert (only.body, only.attachments.get().status) == ("", "pending")
    only.conversation.refresh_from_db()
    assert only.conversation.last_message_preview == "📎 cat.jpg"


def test_a_replayed_update_stores_one_message_and_no_events(cast, pigeon):
    channel = pigeon_channel(cast.acme)
    update = InboundMessage(external_contact_id="45", text="Once", external_id="45:1")
    first = actions.receive_inbound(channel=channel, message=update)
    mark = last_event_id()
    assert actions.receive_inbound(channel=channel, message=update).pk == first.pk
    assert Message.objects.filter(channel=channel).count() == 1 and event_types(after=mark) == []


def test_a_group_is_one_conversation_and_each_message_is_its_senders(cast, pigeon):
    channel = pigeon_channel(cast.acme)

    def said(who: str, name: str, text: str, n: int) -> Message:
        return actions.receive_inbound(
            channel=channel,
            message=InboundMessage(
                external_contact_id=who,
                profile=ContactProfile(name=name),
                text=text,
                external_id=f"-100:{n}",
                thread_id="-100",
                thread_title="Club",
            ),
        )

    one, two = said("7", "Ann", "Hello club", 1), said("8", "Ben", "Hi Ann", 2)
    assert one.conversation_id == two.conversation_id
    conversation = Conversation.objects.get(pk=one.conversation_id)
    assert conversation.contact.name == "Club"
    assert [(m.author_name, m.body) for m in conversation.messages.order_by("pk")] == [
        ("Ann", "Hello club"),
        ("Ben", "Hi Ann"),
    ]
    # Ann's private chat is hers, apart from the group's.
    private = actions.receive_inbound(channel=channel, message=InboundMessage(external_contact_id="7", text="Psst"))
    assert private.conversation_id != conversation.pk
    assert private.author_contact_id == one.author_contact_id == private.conversation.contact_id


def test_a_blocked_member_of_a_group_is_kept_but_opens_and_tells_nothing(cast, pigeon):
    channel = pigeon_channel(cast.acme)
    group = InboundMessage(external_contact_id="9", text="First", external_id="g:1", thread_id="-200")
    first = actions.receive_inbound(channel=channel, message=group)
    actions.block_contact(first.author_contact, by=cast.alice, reason="spam")
    mark = last_event_id()
    kept = actions.receive_inbound(
        channel=channel,
        message=InboundMessage(external_contact_id="9", text="Spam", external_id="g:2", thread_id="-200"),
    )
    assert kept.while_blocked and kept.conversation_id == first.conversation_id
    assert event_types(after=mark) == []


def test_the_rate_limit_hook_still_guards_new_conversations(cast, pigeon):
    channel = pigeon_channel(cast.acme)

    def refuse() -> None:
        raise actions.ActionError("Too many new chats", code="rate_limited")

    with pytest.raises(actions.ActionError, match="Too many new chats"):
        actions.receive_inbound(
            channel=channel,
            message=InboundMessage(external_contact_id="46", text="Hi"),
            before_new_conversation=refuse,
        )
    assert not Message.objects.filter(channel=channel).exists()
    assert not Contact.objects.filter(identities__channel=channel).exists()
