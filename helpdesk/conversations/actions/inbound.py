"""A customer's message arrives: store it, open or reopen the conversation, quick answers, routing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from helpdesk.errors import ActionError
from helpdesk.events import log as events

from .. import canned, csat, quick_answers
from ..inbound import ContactProfile, InboundAttachment, InboundMessage, SenderHint
from ..models import Channel, Contact, ContactIdentity, Conversation, Direction, Message, MessageKind, Status
from ..snapshots import message_data, preview_of
from . import arrival
from ._common import _UNSTORABLE, WakeReason, _access_snapshot, _check_storable, _clean_body
from .attachments import bind_uploads, check_uploads
from .contacts import clean_contact_attributes
from .csat import _answer_by_digit, _count_resolution, _offer_survey
from .delivery import _say_automatically
from .fetching import describe_inbound_files
from .handout import route_queued

log = logging.getLogger(__name__)
NAME_MAX_CHARS = Contact._meta.get_field("name").max_length


def receive_inbound(
    *,
    channel: Channel,
    message: InboundMessage,
    before_new_conversation: Callable[[], None] | None = None,
    uploads: Sequence[int] = (),
    hint: SenderHint | None = None,
) -> Message:
    """Store a normalised message from any channel: the one call each channel's ``inbound`` makes.

    The contact is found, or made from ``message.profile``, by ``message.external_contact_id``.
    With a ``thread_id`` (a group chat) the conversation belongs to the thread, one per group,
    and the message to its sender, whose name the thread shows. The message's text is the
    customer's text alone; each file it came with becomes a pending ``Attachment`` that the
    worker fetches (``actions.fetching``): a message of files only is fine.
    ``before_new_conversation`` is ``receive_message``'s: a channel's limit on new conversations,
    and ``uploads`` the files the sender uploaded before sending (the widget's). ``hint`` is
    what a long-lived connection knows of its sender (``SenderHint``), for a private chat.
    """
    author = _profile_defaults(message.profile)
    if message.thread_id is None:
        return receive_message(
            channel=channel,
            external_contact_id=message.external_contact_id,
            body=message.body(),
            files=message.attachments,
            external_id=message.external_id,
            contact_defaults=author,
            before_new_conversation=before_new_conversation,
            uploads=uploads,
            hint=hint,
        )
    return receive_message(
        channel=channel,
        external_contact_id=message.thread_id,
        body=message.body(),
        files=message.attachments,
        external_id=message.external_id,
        contact_defaults=_profile_defaults(ContactProfile(name=message.thread_title)),
        before_new_conversation=before_new_conversation,
        author_contact_id=message.external_contact_id,
        author_defaults=author,
        uploads=uploads,
    )


def _profile_defaults(profile: ContactProfile) -> dict[str, Any]:
    """A new contact's fields from what the provider told us; a bad extra never loses the message."""

    def text(value: str, limit: int | None = None) -> str:
        return _UNSTORABLE.sub("", value or "").strip()[:limit]

    known = {
        "username": text(profile.username),
        "language": text(profile.language),
        "avatar_url": text(profile.avatar_url),
    }
    attributes = {key: value for key, value in known.items() if value}
    try:
        attributes = clean_contact_attributes({**profile.extra, **attributes})
    except ActionError as exc:
        # The provider's extras don't fit a contact's attributes: keep the ones we know.
        log.warning("inbound profile extras dropped: %s (%s)", exc.code, ", ".join(map(str, profile.extra)))
        try:
            attributes = clean_contact_attributes(attributes)
        except ActionError:
            attributes = {}
    return {"name": text(profile.name, NAME_MAX_CHARS), "attributes": attributes}


def receive_message(
    *,
    channel: Channel,
    external_contact_id: str,
    body: str,
    files: Sequence[InboundAttachment] = (),
    external_id: str | None = None,
    contact_defaults: dict[str, Any] | None = None,
    before_new_conversation: Callable[[], None] | None = None,
    author_contact_id: str | None = None,
    author_defaults: dict[str, Any] | None = None,
    uploads: Sequence[int] = (),
    hint: SenderHint | None = None,
) -> Message:
    """Store a customer's message, opening or reopening their conversation as needed.

    Idempotent: a message whose channel id (``external_id``) was already stored is returned
    as it is, with no new events. The unique ``external_id`` decides: the insert does nothing
    on a conflict, the transaction is rolled back, and the stored message is read.

    ``hint``: what a long-lived connection knows of its sender (``SenderHint``); a plain text
    message by its one author then takes the short road (``arrival``) on PostgreSQL. A hint
    never changes the outcome, only the work: a stale one falls back to the long road.

    ``before_new_conversation`` runs just before a conversation is created (never for one
    that is reopened); an ``ActionError`` it raises, such as a rate limit of the channel's,
    rolls everything back: nothing is stored.

    ``external_contact_id`` is whose conversation it is. In a group chat that is the group,
    and ``author_contact_id`` (with ``author_defaults``) the member who wrote: the message is
    theirs, and it is kept unseen if either the group or the member is blocked.

    ``files``: the files the provider described, kept pending and fetched by the worker after
    commit. ``uploads`` are ids of files the author uploaded before sending
    (``upload_customer_attachment``): bound to the message in this transaction, or, if one is
    not the author's unsent upload, refused with everything else (``bad_attachment``). With
    files or uploads the text may be empty.
    """
    body = _clean_body(body, may_be_empty=bool(files or uploads))
    _check_storable(external_contact_id, field="external_contact_id")
    if author_contact_id is not None:
        _check_storable(author_contact_id, field="author_contact_id")
    if external_id:
        _check_storable(external_id, field="external_id")
    if author_contact_id == external_contact_id:
        author_contact_id = None
    plain = not (files or uploads) and author_contact_id is None and connection.vendor == "postgresql"
    store = partial(
        _receive,
        channel=channel,
        external_contact_id=external_contact_id,
        body=body,
        files=files,
        external_id=external_id,
        contact_defaults=contact_defaults,
        before_new_conversation=before_new_conversation,
        author_contact_id=author_contact_id,
        author_defaults=author_defaults,
        uploads=uploads,
    )
    try:
        try:
            return store(hint=hint if plain else None)
        except arrival.StaleHint:
            return store(hint=None)
    except arrival.Duplicate:
        return Message.objects.get(channel=channel, external_id=external_id)


@transaction.atomic(durable=True)
def _receive(
    *,
    channel: Channel,
    external_contact_id: str,
    body: str,
    files: Sequence[InboundAttachment],
    external_id: str | None,
    contact_defaults: dict[str, Any] | None,
    before_new_conversation: Callable[[], None] | None,
    author_contact_id: str | None,
    author_defaults: dict[str, Any] | None,
    uploads: Sequence[int],
    hint: SenderHint | None,
) -> Message:
    """``receive_message``'s one transaction (its arguments checked); raises ``arrival.Duplicate``
    or ``arrival.StaleHint`` to be rolled back."""
    if hint is not None and hint.conversation_id:
        arrived = arrival.into_open(
            channel=channel,
            external_contact_id=external_contact_id,
            conversation_id=hint.conversation_id,
            body=body,
            external_id=external_id,
            now=timezone.now(),
        )
        if arrived is not None:
            conversation, message = arrived
            events.record(conversation, "message.created", message=message_data(message))
            return _answer_and_route(conversation, message, fresh=False)
    elif hint is not None and hint.new_sender:
        new_contact = Contact(**_allowed_contact_fields(contact_defaults or {}))
        opened, conversation, message = arrival.first_of_new(
            channel=channel,
            external_contact_id=external_contact_id,
            contact=new_contact,
            body=body,
            external_id=external_id,
            now=timezone.now(),
        )
        if before_new_conversation is not None:
            before_new_conversation()
        events.record(opened, "conversation.created")
        events.record(conversation, "message.created", message=message_data(message))
        return _answer_and_route(conversation, message, fresh=True)

    # One customer's messages arrive one at a time, so two first messages can't open two chats.
    # (The locked row is the one read: a block set a moment ago counts.)
    contact = _contact_for(channel, external_contact_id, contact_defaults or {}, lock=True)
    author = contact
    if author_contact_id is not None:
        author = _contact_for(channel, author_contact_id, author_defaults or {}, lock=True)
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "channel", "assignee", "team")
        .filter(contact=contact, channel=channel, deleted_at__isnull=True)
        .order_by("-pk")
        .first()
    )
    now = timezone.now()

    # Files that can't go with it refuse it before anything is counted or written. A resent
    # frame's files are bound already (to the message it stored): that is a replay, not a
    # refusal, so it is looked for first (one read, for messages with files only).
    if uploads:
        if external_id and Message.objects.filter(channel=channel, external_id=external_id).exists():
            raise arrival.Duplicate
        check_uploads(uploads, conversation=conversation, by_contact=author)

    # 0) A message that would open a new conversation: the caller may refuse it (a rate limit).
    if conversation is None and before_new_conversation is not None:
        before_new_conversation()

    # 1) A blocked contact: the message is kept, and nothing else happens.
    if contact.is_blocked(now) or author.is_blocked(now):
        return _keep_while_blocked(
            channel,
            contact,
            conversation,
            author=author,
            body=body,
            files=files,
            external_id=external_id,
            now=now,
            uploads=uploads,
        )

    # 2) A lone digit answering the survey of a resolved conversation rates it (or is refused
    #    politely): it is kept, and the conversation stays resolved (docs/csat.md).
    score = csat.digit_score(body) if not (files or uploads) and author.pk == contact.pk else None
    if score is not None and conversation is not None and conversation.status == Status.RESOLVED:
        survey = csat.current_survey(conversation)
        if survey is not None:
            return _keep_survey_answer(conversation, survey, author, body=body, external_id=external_id, now=now)

    # 3) Store it, opening, reopening or waking the conversation.
    fresh = conversation is None or conversation.status == Status.RESOLVED
    if conversation is None:
        conversation = Conversation.objects.create(
            company_id=channel.company_id,
            channel=channel,
            contact=contact,
            team_id=channel.team_id,
            last_activity_at=now,
        )
        conversation.assignee = None
        events.record(conversation, "conversation.created")
    elif conversation.status != Status.OPEN:
        previous = _access_snapshot(conversation)
        was = conversation.status
        conversation.status, conversation.snoozed_until = Status.OPEN, None
        if was == Status.SNOOZED:
            events.record(conversation, "conversation.woken", previous=previous, reason=WakeReason.CUSTOMER)
        else:
            events.record(conversation, "conversation.reopened", previous=previous)

    message = _store_inbound(conversation, author, body=body, files=files, external_id=external_id, now=now)
    if uploads:
        bind_uploads(message, uploads, by_contact=author)

    conversation.last_activity_at = now
    conversation.waiting_since = conversation.waiting_since or now
    conversation.last_message_preview = preview_of(body, [f.name for f in message.known_attachments])
    conversation.save(
        update_fields=[
            "status",
            "snoozed_until",
            "last_activity_at",
            "waiting_since",
            "last_message_preview",
            "updated_at",
        ]
    )
    message.conversation = conversation
    events.record(conversation, "message.created", message=message_data(message))
    return _answer_and_route(conversation, message, fresh=fresh)


def _answer_and_route(conversation: Conversation, message: Message, *, fresh: bool) -> Message:
    # 4) A quick answer may reply at once, and may settle the conversation.
    answer = quick_answers.answer_for(conversation, message, fresh=fresh)
    if answer is not None:
        _reply_automatically(conversation, answer)

    # 5) Routing: a conversation nobody has yet goes to an agent with room, or waits in the queue.
    if conversation.status == Status.OPEN and conversation.assignee_id is None:
        route_queued(conversation)
    return message


def _store_inbound(
    conversation: Conversation,
    contact: Contact,
    *,
    body: str,
    files: Sequence[InboundAttachment] = (),
    external_id: str | None,
    now: datetime,
    while_blocked: bool = False,
) -> Message:
    """Create the customer's message; ``arrival.Duplicate`` if one with its ``external_id`` exists
    (stored before, or by a concurrent delivery that won the race): the caller rolls back."""
    message = Message(
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=Direction.INBOUND,
        kind=MessageKind.MESSAGE,
        author_contact=contact,
        body=body,
        external_id=external_id or None,
        created_at=now,
        while_blocked=while_blocked,
    )
    arrival.insert_new(message)
    describe_inbound_files(message, files)
    return message


def _keep_survey_answer(
    conversation: Conversation, survey, author: Contact, *, body: str, external_id: str | None, now: datetime
) -> Message:
    """Store the customer's digit without reopening anything, then rate or refuse (``_answer_by_digit``)."""
    message = _store_inbound(conversation, author, body=body, external_id=external_id, now=now)
    conversation.last_activity_at = now
    conversation.last_message_preview = preview_of(body)
    conversation.save(update_fields=["last_activity_at", "last_message_preview", "updated_at"])
    message.conversation = conversation
    events.record(conversation, "message.created", message=message_data(message), survey_answer=True)
    _answer_by_digit(conversation, survey, score=csat.digit_score(body), inbound=message)
    return message


def _keep_while_blocked(
    channel: Channel,
    contact: Contact,
    conversation: Conversation | None,
    *,
    author: Contact,
    body: str,
    files: Sequence[InboundAttachment],
    external_id: str | None,
    now: datetime,
    uploads: Sequence[int] = (),
) -> Message:
    """Keep a blocked contact's message without opening, reopening, notifying or routing anything.

    It goes into their latest conversation on the channel, whatever its state, untouched
    (status, preview, activity time, unread counts stay as they were). With none, into a new
    conversation that starts out resolved. No event is recorded, so no socket, list or
    delivery hears of it; the thread shows it, marked, to whoever opens the conversation.
    """
    if conversation is None:
        conversation = Conversation.objects.create(
            company_id=channel.company_id,
            channel=channel,
            contact=contact,
            team_id=channel.team_id,
            status=Status.RESOLVED,
            last_activity_at=now,
        )
    message = _store_inbound(
        conversation, author, body=body, files=files, external_id=external_id, now=now, while_blocked=True
    )
    if uploads:
        bind_uploads(message, uploads, by_contact=author)
    return message


def _reply_automatically(conversation: Conversation, answer: quick_answers.Candidate) -> Message:
    """Send a quick answer's reply: a message from nobody in particular, delivered like any reply.

    The conversation stays open for routing unless the rule says its answer settles it; then
    the system resolves it (an event without an actor) and nobody is assigned.
    """
    rule = answer.rule
    values = canned.placeholder_values(contact=conversation.contact, agent=None, company=conversation.company)
    body = canned.render(rule.answer, values)
    why = {"id": rule.pk, "title": rule.title, "trigger": answer.trigger, "how": answer.how, "score": answer.score}
    reply = _say_automatically(conversation, body, quick_answer=why)
    if rule.resolves:
        previous = _access_snapshot(conversation)
        conversation.status, conversation.snoozed_until, conversation.waiting_since = Status.RESOLVED, None, None
        resolution = _count_resolution(conversation)
        conversation.save(update_fields=["status", "snoozed_until", "waiting_since", "resolutions", "updated_at"])
        events.record(
            conversation,
            "conversation.resolved",
            previous=previous,
            quick_answer=why,
            resolution=resolution,
            survey=csat.enabled(conversation.channel),
        )
        _offer_survey(conversation, by=None)
    return reply


def _allowed_contact_fields(defaults: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in defaults.items() if key in ("name", "email", "phone", "attributes")}


def _contact_for(
    channel: Channel, external_contact_id: str, defaults: dict[str, Any], *, lock: bool = False
) -> Contact:
    """The contact with this id on the channel, made if new; ``lock``: a found one is read under
    its row lock, in the same query (a new one is no other transaction's to see)."""
    identities = ContactIdentity.objects.select_related("contact")
    if lock:
        identities = identities.select_for_update(of=("contact",))
    identity = identities.filter(channel=channel, external_id=external_contact_id).first()
    if identity:
        return identity.contact
    allowed = _allowed_contact_fields(defaults)
    try:
        with transaction.atomic():
            contact = Contact.objects.create(company_id=channel.company_id, **allowed)
            ContactIdentity.objects.create(channel=channel, contact=contact, external_id=external_contact_id)
            return contact
    except IntegrityError:
        return (
            ContactIdentity.objects.select_related("contact")
            .get(channel=channel, external_id=external_contact_id)
            .contact
        )
