"""The normalised inbound message: what every channel's ``inbound`` turns a provider's update into.

A channel knows its wire format (a widget frame, a Telegram ``Update``, a VK ``message_new``)
and nothing else; it fills one ``InboundMessage`` and makes one call,
``actions.receive_inbound(channel=..., message=...)``. The conversation layer knows nothing of
the wire format. See docs/channels.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ContactProfile:
    """What the provider tells us about the person writing; every field is optional.

    ``extra`` holds the provider's own facts worth keeping (a Telegram ``is_premium``, a VK
    city), as flat names to text, numbers, true/false or null: they become contact attributes.
    """

    name: str = ""
    username: str = ""  # the handle: a Telegram @username, a VK screen name
    language: str = ""  # the language the provider reports (an IETF tag such as "ru" or "en-US")
    avatar_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundAttachment:
    """A file the customer sent, as the provider describes it: carried, not fetched here.

    ``receive_inbound`` keeps it as a pending ``Attachment`` whose ``source`` is these fields
    (empty ones left out); the worker hands that ``source`` back to ``Adapter.fetch_file``.

    ``file_id`` is the provider's handle for fetching it (Telegram's ``file_id``) and ``url``
    where it can be downloaded, whichever the provider gives; ``kind`` is the provider's own
    word for it (photo, voice, sticker, doc).
    """

    file_id: str = ""
    url: str = ""
    name: str = ""
    mime_type: str = ""
    size: int | None = None
    kind: str = ""

    def describe(self) -> str:
        """One line that says what the file was, for a thread that can't show the file itself."""
        facts = [fact for fact in (self.kind, self.mime_type) if fact]
        if self.size is not None:
            facts.append(_size(self.size))
        name = self.name or self.file_id or self.url or "file"
        return f"[{name}{' (' + ', '.join(facts) + ')' if facts else ''}]"


@dataclass(frozen=True)
class InboundMessage:
    """One message from a customer, in the same shape whatever channel it came by.

    - ``external_contact_id``: who wrote, in the channel's own ids (a widget visitor id, a
      Telegram user id); one contact per id per channel.
    - ``external_id``: the provider's id of this message, unique per channel (a replay of
      the same id stores nothing twice). Scope it so it can't collide: a Telegram
      ``message_id`` is unique per chat only, so ``"<chat id>:<message id>"``.
    - ``reply_to_external_id``: the ``external_id`` of the message this one answers, if any.
    - ``thread_id``: what the provider calls the conversation when it is not the person
      (a Telegram group's chat id, a VK chat's ``peer_id``); ``None`` for a private chat.
    - ``attachments``: the files that came with it, described, not fetched.
    """

    external_contact_id: str
    text: str = ""
    profile: ContactProfile = field(default_factory=ContactProfile)
    attachments: tuple[InboundAttachment, ...] = ()
    external_id: str | None = None
    reply_to_external_id: str | None = None
    thread_id: str | None = None
    thread_title: str = ""  # the group's name, for the conversation's contact

    def __post_init__(self) -> None:
        # A list is accepted and frozen into a tuple, so the message stays immutable.
        object.__setattr__(self, "attachments", tuple(self.attachments))

    def body(self) -> str:
        """The text to store: the customer's text alone (it may be empty when files came).

        Files are not text: each becomes an ``Attachment`` of the message, kept pending and
        fetched by the worker through the channel's ``Adapter.fetch_file`` (docs/attachments.md).
        """
        return self.text.strip()


@dataclass(frozen=True)
class SenderHint:
    """What a long-lived connection (the widget's socket) knows of its sender, to spare reads.

    - ``conversation_id``: the conversation the sender's last message went to;
    - ``new_sender``: no contact was known for the sender when the connection opened.

    Only a hint: a stale one costs a statement or a retry, never a different outcome.
    """

    conversation_id: int | None = None
    new_sender: bool = False


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"
