"""The one writer: every change to a conversation goes through a function here.

Each action is one transaction and records what happened in the event log; side effects
(sockets, outbound delivery) leave only after commit.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError
from helpdesk.events import audit
from helpdesk.events import log as events

from .. import access, canned, quick_answers, routing
from ..models import (
    Channel,
    Contact,
    ContactIdentity,
    Conversation,
    Direction,
    Mention,
    Message,
    MessageKind,
    Priority,
    ReadMarker,
    Status,
)
from ..snapshots import contact_card, message_data, preview_of
from ..snooze import clean_until

_UNSET: Any = object()
log = logging.getLogger(__name__)


class WakeReason:
    """Why a snoozed conversation woke (the ``reason`` of ``conversation.woken``)."""

    TIME = "time"  # its snooze time came (the scheduler)
    CUSTOMER = "customer"  # the customer wrote
    TEAMMATE = "teammate"  # someone other than the assignee replied or added a note
    MANUAL = "manual"  # someone unsnoozed it by hand


# What a text column can't hold: PostgreSQL refuses NUL, and a lone surrogate (a JSON
# "\ud800" decodes to one) can't be encoded as UTF-8 at all. Either would fail the query.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _check_storable(text: str, *, field: str | None = None) -> str:
    """Refuse text the database can't hold, before it reaches a query."""
    if _UNSTORABLE.search(text):
        raise ActionError(
            _("The text contains characters that can't be stored (a NUL byte or a broken character)."),
            code="bad_characters",
            field=field,
        )
    return text


def _clean_body(body: str) -> str:
    body = _check_storable((body or "").strip())
    if not body:
        raise ActionError(_("A message can't be empty."), code="empty")
    if len(body) > settings.MESSAGE_MAX_CHARS:
        raise ActionError(
            _("A message can be at most %(limit)s characters long.") % {"limit": settings.MESSAGE_MAX_CHARS},
            code="too_long",
        )
    return body


def _locked(conversation: Conversation) -> Conversation:
    """Re-read the conversation under a row lock so concurrent actions serialise."""
    locked = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "channel", "assignee", "team")
        .get(pk=conversation.pk)
    )
    conversation.__dict__.update(locked.__dict__)
    return conversation


def _access_snapshot(conversation: Conversation) -> dict[str, Any]:
    return {"team_id": conversation.team_id, "assignee_id": conversation.assignee_id, "status": conversation.status}


# --- Inbound ------------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def receive_message(
    *,
    channel: Channel,
    external_contact_id: str,
    body: str,
    external_id: str | None = None,
    contact_defaults: dict[str, Any] | None = None,
    before_new_conversation: Callable[[], None] | None = None,
) -> Message:
    """Store a customer's message, opening or reopening their conversation as needed.

    Idempotent: a message whose channel id (``external_id``) was already stored is returned
    as it is, with no new events. ``before_new_conversation`` runs just before a conversation
    is created (never for one that is reopened); an ``ActionError`` it raises, such as a rate
    limit of the channel's, rolls everything back: nothing is stored.
    """
    body = _clean_body(body)
    _check_storable(external_contact_id, field="external_contact_id")
    if external_id:
        _check_storable(external_id, field="external_id")
        existing = Message.objects.filter(channel=channel, external_id=external_id).first()
        if existing:
            return existing

    contact = _contact_for(channel, external_contact_id, contact_defaults or {})
    # One customer's messages arrive one at a time, so two first messages can't open two chats.
    # (The locked row is the one read: a block set a moment ago counts.)
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("contact", "channel", "assignee", "team")
        .filter(contact=contact, channel=channel, deleted_at__isnull=True)
        .order_by("-pk")
        .first()
    )
    now = timezone.now()

    # 0) A message that would open a new conversation: the caller may refuse it (a rate limit).
    if conversation is None and before_new_conversation is not None:
        before_new_conversation()

    # 1) A blocked contact: the message is kept, and nothing else happens.
    if contact.is_blocked(now):
        return _keep_while_blocked(channel, contact, conversation, body=body, external_id=external_id, now=now)

    # 2) Store it, opening, reopening or waking the conversation.
    fresh = conversation is None or conversation.status == Status.RESOLVED
    if conversation is None:
        conversation = Conversation.objects.create(
            company_id=channel.company_id,
            channel=channel,
            contact=contact,
            team_id=channel.team_id,
            last_activity_at=now,
        )
        conversation = Conversation.objects.select_related("contact", "channel", "assignee", "team").get(
            pk=conversation.pk
        )
        events.record(conversation, "conversation.created")
    elif conversation.status != Status.OPEN:
        previous = _access_snapshot(conversation)
        was = conversation.status
        conversation.status, conversation.snoozed_until = Status.OPEN, None
        if was == Status.SNOOZED:
            events.record(conversation, "conversation.woken", previous=previous, reason=WakeReason.CUSTOMER)
        else:
            events.record(conversation, "conversation.reopened", previous=previous)

    message, created = _store_inbound(conversation, contact, body=body, external_id=external_id, now=now)
    if not created:
        return message

    conversation.last_activity_at = now
    conversation.waiting_since = conversation.waiting_since or now
    conversation.last_message_preview = preview_of(body)
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

    # 3) A quick answer may reply at once, and may settle the conversation.
    answer = quick_answers.answer_for(conversation, message, fresh=fresh)
    if answer is not None:
        _reply_automatically(conversation, answer)

    # 4) Routing: a conversation nobody has yet goes to an agent with room, or waits in the queue.
    if conversation.status == Status.OPEN and conversation.assignee_id is None:
        hand_out(conversation.company_id, current=conversation)
    return message


def _store_inbound(
    conversation: Conversation,
    contact: Contact,
    *,
    body: str,
    external_id: str | None,
    now: datetime,
    while_blocked: bool = False,
) -> tuple[Message, bool]:
    """Create the customer's message; (the stored one, False) if a concurrent delivery won the race."""
    try:
        with transaction.atomic():
            message = Message.objects.create(
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
            return message, True
    except IntegrityError:
        return Message.objects.get(channel_id=conversation.channel_id, external_id=external_id), False


def _keep_while_blocked(
    channel: Channel,
    contact: Contact,
    conversation: Conversation | None,
    *,
    body: str,
    external_id: str | None,
    now: datetime,
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
    message, _created = _store_inbound(
        conversation, contact, body=body, external_id=external_id, now=now, while_blocked=True
    )
    return message


def _reply_automatically(conversation: Conversation, answer: quick_answers.Candidate) -> Message:
    """Send a quick answer's reply: a message from nobody in particular, delivered like any reply.

    The conversation stays open for routing unless the rule says its answer settles it; then
    the system resolves it (an event without an actor) and nobody is assigned.
    """
    rule = answer.rule
    now = timezone.now()
    values = canned.placeholder_values(contact=conversation.contact, agent=None, company=conversation.company)
    body = canned.render(rule.answer, values)
    reply = Message.objects.create(
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=Direction.OUTBOUND,
        kind=MessageKind.MESSAGE,
        body=body,
        automatic=True,
        created_at=now,
    )
    reply.conversation = conversation
    # The customer still waits for a person (waiting_since stays) unless the answer settles it.
    conversation.last_activity_at = now
    conversation.last_message_preview = preview_of(body)
    conversation.save(update_fields=["last_activity_at", "last_message_preview", "updated_at"])
    why = {"id": rule.pk, "title": rule.title, "trigger": answer.trigger, "how": answer.how, "score": answer.score}
    events.record(conversation, "message.created", message=message_data(reply), quick_answer=why)
    if rule.resolves:
        previous = _access_snapshot(conversation)
        conversation.status, conversation.snoozed_until, conversation.waiting_since = Status.RESOLVED, None, None
        conversation.save(update_fields=["status", "snoozed_until", "waiting_since", "updated_at"])
        events.record(conversation, "conversation.resolved", previous=previous, quick_answer=why)
    return reply


def _contact_for(channel: Channel, external_contact_id: str, defaults: dict[str, Any]) -> Contact:
    identity = (
        ContactIdentity.objects.select_related("contact")
        .filter(channel=channel, external_id=external_contact_id)
        .first()
    )
    if identity:
        return identity.contact
    allowed = {key: value for key, value in defaults.items() if key in ("name", "email", "phone", "attributes")}
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


# --- Contacts --------------------------------------------------------------------------------------

CONTACT_ATTRIBUTES_MAX_KEYS = 50
CONTACT_ATTRIBUTE_KEY_MAX_CHARS = 64
CONTACT_ATTRIBUTE_VALUE_MAX_CHARS = 1000
CONTACT_ATTRIBUTES_MAX_BYTES = 16 * 1024
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()\-.]{2,38}$")


def contact_state(contact: Contact) -> dict[str, Any]:
    return {"name": contact.name, "email": contact.email, "phone": contact.phone, "attributes": contact.attributes}


def _clean_contact_name(name: str) -> str:
    name = _check_storable(" ".join(str(name or "").split()), field="name")
    if len(name) > 200:
        raise ActionError(_("The name can be at most 200 characters long."), code="too_long", field="name")
    return name


def _clean_contact_email(email: str) -> str:
    email = str(email or "").strip()
    if not email:
        return ""
    try:
        if len(email) > 254:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError:
        raise ActionError(_("Enter a valid e-mail address."), code="bad_email", field="email") from None
    return email


def _clean_phone(phone: str) -> str:
    phone = " ".join(str(phone or "").split())
    if phone and not PHONE_RE.match(phone):
        raise ActionError(
            _("Enter a phone number: digits, spaces and + - ( ) . only, up to 40 characters."),
            code="bad_phone",
            field="phone",
        )
    return phone


def _storable_text(text: str) -> bool:
    return "\x00" not in text and not any("\ud800" <= char <= "\udfff" for char in text)


def clean_contact_attributes(attributes: Any) -> dict[str, Any]:
    """A flat JSON object: string keys to strings, numbers, true/false or null, size-limited."""

    def refuse(message: str) -> ActionError:
        return ActionError(message, code="bad_attributes", field="attributes")

    if not isinstance(attributes, dict):
        raise refuse(_("Attributes must be an object of names to values."))
    if len(attributes) > CONTACT_ATTRIBUTES_MAX_KEYS:
        raise refuse(_("A contact can have at most %(limit)s attributes.") % {"limit": CONTACT_ATTRIBUTES_MAX_KEYS})
    for key, value in attributes.items():
        if not isinstance(key, str) or not key.strip() or len(key) > CONTACT_ATTRIBUTE_KEY_MAX_CHARS:
            raise refuse(
                _("Attribute names must be 1 to %(limit)s characters long.")
                % {"limit": CONTACT_ATTRIBUTE_KEY_MAX_CHARS}
            )
        if not _storable_text(key) or (isinstance(value, str) and not _storable_text(value)):
            # PostgreSQL's jsonb takes no NUL, and no text encodes a lone surrogate.
            raise refuse(_("The attribute %(name)s contains characters that are not allowed.") % {"name": repr(key)})
        if isinstance(value, float) and not math.isfinite(value):
            raise refuse(_("The attribute %(name)s must be a finite number.") % {"name": key})
        if value is not None and not isinstance(value, str | int | float | bool):
            raise refuse(
                _("The attribute %(name)s must be a text, a number, true, false or null, not a list or object.")
                % {"name": key}
            )
        _check_storable(key, field="attributes")
        if isinstance(value, str):
            _check_storable(value, field="attributes")
        if isinstance(value, str) and len(value) > CONTACT_ATTRIBUTE_VALUE_MAX_CHARS:
            raise refuse(
                _("The attribute %(name)s can be at most %(limit)s characters long.")
                % {"name": key, "limit": CONTACT_ATTRIBUTE_VALUE_MAX_CHARS}
            )
    if len(json.dumps(attributes, ensure_ascii=False).encode()) > CONTACT_ATTRIBUTES_MAX_BYTES:
        raise refuse(
            _("The attributes can be at most %(limit)s KB together.") % {"limit": CONTACT_ATTRIBUTES_MAX_BYTES // 1024}
        )
    return dict(attributes)


@transaction.atomic(durable=True)
def update_contact(
    contact: Contact,
    *,
    by: Employee,
    name: str = _UNSET,
    email: str = _UNSET,
    phone: str = _UNSET,
    attributes: dict[str, Any] = _UNSET,
) -> Contact:
    """Correct what we know about a customer. ``attributes`` replaces the whole object."""
    access.require(by, Perm.MANAGE_CONTACTS)
    if contact.company_id != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    # The same row lock receive_message takes: an inbound message never sees half an edit.
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    before = contact_state(contact)
    if name is not _UNSET:
        contact.name = _clean_contact_name(name)
    if email is not _UNSET:
        contact.email = _clean_contact_email(email)
    if phone is not _UNSET:
        contact.phone = _clean_phone(phone)
    if attributes is not _UNSET:
        contact.attributes = clean_contact_attributes(attributes)
    contact.save(update_fields=["name", "email", "phone", "attributes"])
    audit.record(
        "contact.updated", company=by.company_id, actor=by, obj=contact, before=before, after=contact_state(contact)
    )
    if contact_state(contact) != before:
        _announce_contact(contact, by=by)
    return contact


# How many of a contact's conversations hear that the contact changed (the most recent ones).
CONTACT_EVENTS_MAX = 50
BLOCK_REASON_MAX_CHARS = 500


def _announce_contact(contact: Contact, *, by: Employee) -> None:
    """Tell open inboxes: a ``contact.updated`` event on each of the contact's recent conversations.

    Events travel per conversation (that is how sockets know who may see them), so every
    list row, header and profile panel showing this contact hears it.
    """
    conversations = (
        Conversation.objects.filter(contact=contact, deleted_at__isnull=True)
        .select_related("channel", "assignee")
        .order_by("-last_activity_at", "-pk")[:CONTACT_EVENTS_MAX]
    )
    card = contact_card(contact)
    for conversation in conversations:
        conversation.contact = contact
        events.record(conversation, "contact.updated", actor=by, contact=card)


def _block_state(contact: Contact) -> dict[str, Any]:
    return {
        "blocked_until": contact.blocked_until.isoformat() if contact.blocked_until else None,
        "blocked_reason": contact.blocked_reason,
    }


@transaction.atomic(durable=True)
def block_contact(contact: Contact, *, by: Employee, until: datetime | None = None, reason: str) -> Contact:
    """Block until ``until`` (None: until unblocked). Their messages are kept but open nothing."""
    access.require(by, Perm.BLOCK_CONTACTS)
    if contact.company_id != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    now = timezone.now()
    if until is not None and until <= now:
        raise ActionError(_("The block must end in the future."), code="past", field="until")
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise ActionError(_("Say why the contact is blocked."), code="no_reason", field="reason")
    if len(reason) > BLOCK_REASON_MAX_CHARS:
        raise ActionError(
            _("The reason can be at most %(limit)s characters long.") % {"limit": BLOCK_REASON_MAX_CHARS},
            code="too_long",
            field="reason",
        )
    # The row receive_message locks: a message is either before the block or after it.
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    before = _block_state(contact) if contact.is_blocked(now) else {}
    contact.blocked_at, contact.blocked_until, contact.blocked_reason, contact.blocked_by = now, until, reason, by
    contact.save(update_fields=["blocked_at", "blocked_until", "blocked_reason", "blocked_by"])
    audit.record(
        "contact.blocked", company=by.company_id, actor=by, obj=contact, before=before, after=_block_state(contact)
    )
    _announce_contact(contact, by=by)
    return contact


@transaction.atomic(durable=True)
def unblock_contact(contact: Contact, *, by: Employee) -> Contact:
    """Lift a block (also one that has run out); the contact's next message works as usual."""
    access.require(by, Perm.BLOCK_CONTACTS)
    if contact.company_id != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.blocked_at is None:
        return contact
    before = _block_state(contact)
    contact.blocked_at, contact.blocked_until, contact.blocked_reason, contact.blocked_by = None, None, "", None
    contact.save(update_fields=["blocked_at", "blocked_until", "blocked_reason", "blocked_by"])
    audit.record("contact.unblocked", company=by.company_id, actor=by, obj=contact, before=before)
    _announce_contact(contact, by=by)
    return contact


# --- Agents' actions ---------------------------------------------------------------------------------


@transaction.atomic(durable=True)
def post_reply(conversation: Conversation, *, by: Employee, body: str) -> Message:
    """An agent's answer to the customer; it leaves through the conversation's channel."""
    access.require(by, Perm.REPLY)
    return _add_agent_message(conversation, by=by, body=body, kind=MessageKind.MESSAGE)


@transaction.atomic(durable=True)
def add_note(
    conversation: Conversation,
    *,
    by: Employee,
    body: str,
    mention_employees: Sequence[Employee] = (),
    mention_teams: Sequence[Team] = (),
) -> Message:
    """An internal note: seen by the team, never sent to the customer.

    It may @mention employees and teams (by id, never by parsing names out of the text).
    Mentioning someone who can't see the conversation is refused, so a mention never
    reveals it; a team's mention reaches those of its members who can see it.
    """
    access.require(by, Perm.ADD_NOTES)
    employees = list({e.pk: e for e in mention_employees}.values())
    teams = list({t.pk: t for t in mention_teams}.values())
    return _add_agent_message(
        conversation,
        by=by,
        body=body,
        kind=MessageKind.NOTE,
        mentions=(employees, teams),
    )


def _check_mentions(conversation: Conversation, employees: list[Employee], teams: list[Team]) -> None:
    """Refuse mentions of other companies, of the deactivated, and of whoever can't see the chat."""
    if not employees and not teams:
        return
    if any(x.company_id != conversation.company_id for x in [*employees, *teams]):
        raise ActionError(_("That belongs to another company."), code="foreign", field="mentions")
    audience = access.audience(conversation)
    seeing = set(audience.filter(pk__in=[e.pk for e in employees]).values_list("pk", flat=True))
    for employee in employees:
        if not employee.is_active:
            raise ActionError(
                _("%(name)s is deactivated and can't be mentioned.") % {"name": employee},
                code="inactive",
                field="mentions",
            )
        if employee.pk not in seeing:
            raise ActionError(
                _("%(name)s can't see this conversation, so they can't be mentioned in it.") % {"name": employee},
                code="mention_out_of_scope",
                field="mentions",
            )
    reached = set(
        Team.objects.filter(pk__in=[t.pk for t in teams], members__in=audience).values_list("pk", flat=True).distinct()
    )
    for team in teams:
        if team.pk not in reached:
            raise ActionError(
                _("Nobody in %(team)s can see this conversation, so the team can't be mentioned in it.")
                % {"team": team},
                code="mention_out_of_scope",
                field="mentions",
            )


def _add_agent_message(
    conversation: Conversation,
    *,
    by: Employee,
    body: str,
    kind: str,
    mentions: tuple[list[Employee], list[Team]] = ([], []),
) -> Message:
    body = _clean_body(body)
    conversation = _locked(conversation)
    employees, teams = mentions
    # Under the lock: who can see the conversation can't change before the note is stored.
    _check_mentions(conversation, employees, teams)
    now = timezone.now()
    previous = None
    # A teammate's reply or note wakes a snoozed chat; the assignee's own does not.
    if conversation.status == Status.SNOOZED and conversation.assignee_id != by.pk:
        previous = _access_snapshot(conversation)
        conversation.status, conversation.snoozed_until = Status.OPEN, None
    is_reply = kind == MessageKind.MESSAGE
    message = Message.objects.create(
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=Direction.OUTBOUND if is_reply else Direction.INTERNAL,
        kind=kind,
        author_employee=by,
        body=body,
        created_at=now,
    )
    conversation.last_activity_at = now
    changed = ["status", "snoozed_until", "last_activity_at", "updated_at"]
    if is_reply:
        # The customer has their answer; the list preview shows what they were told.
        conversation.waiting_since = None
        conversation.last_message_preview = preview_of(body)
        changed += ["waiting_since", "last_message_preview"]
    conversation.save(update_fields=changed)
    if previous:
        events.record(conversation, "conversation.woken", actor=by, previous=previous, reason=WakeReason.TEAMMATE)
    extra: dict[str, Any] = {}
    if employees or teams:
        Mention.objects.bulk_create(
            [Mention(message=message, conversation=conversation, employee=e, created_at=now) for e in employees]
            + [Mention(message=message, conversation=conversation, team=t, created_at=now) for t in teams]
        )
        # Sockets tell the mentioned apart by these ids; the fan-out itself stays the gate's.
        extra["mentions"] = {"employee_ids": [e.pk for e in employees], "team_ids": [t.pk for t in teams]}
    events.record(conversation, "message.created", actor=by, message=message_data(message), **extra)
    _mark_read(conversation, employee=by, message_id=message.pk)
    if previous:
        _hand_out_after(conversation, previous)
    return message


@transaction.atomic(durable=True)
def assign(
    conversation: Conversation, *, by: Employee, assignee: Employee | None = _UNSET, team: Team | None = _UNSET
) -> Conversation:
    """Give the conversation to an employee and/or a team (``None`` clears either)."""
    if not (assignee is not _UNSET and assignee is not None and assignee.pk == by.pk and by.can(Perm.REPLY)):
        access.require(by, Perm.ASSIGN)  # taking a chat for yourself only needs the right to answer it
    conversation = _locked(conversation)
    new_team = conversation.team if team is _UNSET else team
    new_assignee = conversation.assignee if assignee is _UNSET else assignee
    if new_assignee is not None and new_assignee != conversation.assignee:
        # As they are now, not as the caller saw them (deactivated or given another role since).
        new_assignee = Employee.objects.select_related("role").get(pk=new_assignee.pk)
    if new_team is not None and new_team.company_id != conversation.company_id:
        raise ActionError(_("That team is not in this company."), code="foreign_team")
    if new_assignee is not None:
        if new_assignee.company_id != conversation.company_id:
            raise ActionError(_("That employee is not in this company."), code="foreign_employee")
        if not new_assignee.is_active:
            raise ActionError(_("That employee is deactivated."), code="inactive_employee")
        if new_assignee != conversation.assignee and not new_assignee.role.allows(Perm.REPLY):
            raise ActionError(
                _("%(name)s's role does not allow answering customers.") % {"name": new_assignee},
                code="cannot_reply",
            )
        if team is not _UNSET and new_team is not None and not new_assignee.teams.filter(pk=new_team.pk).exists():
            raise ActionError(_("%(name)s is not a member of that team.") % {"name": new_assignee}, code="not_in_team")
    if new_team == conversation.team and new_assignee == conversation.assignee:
        return conversation
    previous = _access_snapshot(conversation)
    conversation.team, conversation.assignee = new_team, new_assignee
    conversation.save(update_fields=["team", "assignee", "updated_at"])
    events.record(conversation, "conversation.assigned", actor=by, previous=previous)
    _hand_out_after(conversation, previous)
    return conversation


@transaction.atomic(durable=True)
def set_priority(conversation: Conversation, *, by: Employee, priority: int) -> Conversation:
    """None, low, medium, high or urgent: higher priorities are handed out and listed first."""
    access.require(by, Perm.REPLY)
    if priority not in Priority.values:
        raise ActionError(_("Unknown priority."), code="bad_priority", field="priority")
    conversation = _locked(conversation)
    if conversation.priority == priority:
        return conversation
    previous = conversation.priority
    conversation.priority = priority
    conversation.save(update_fields=["priority", "updated_at"])
    events.record(conversation, "conversation.priority_changed", actor=by, was=previous)
    return conversation


@transaction.atomic(durable=True)
def resolve(conversation: Conversation, *, by: Employee) -> Conversation:
    access.require(by, Perm.RESOLVE)
    return _set_status(conversation, by=by, status=Status.RESOLVED, event="conversation.resolved")


@transaction.atomic(durable=True)
def reopen(conversation: Conversation, *, by: Employee) -> Conversation:
    access.require(by, Perm.RESOLVE)
    return _set_status(conversation, by=by, status=Status.OPEN, event="conversation.reopened")


@transaction.atomic(durable=True)
def snooze(conversation: Conversation, *, by: Employee, until: datetime) -> Conversation:
    """Hide the conversation from the open lists until ``until`` or the customer's next message."""
    access.require(by, Perm.SNOOZE)
    clean_until(until)
    conversation = _locked(conversation)
    if conversation.status == Status.RESOLVED:
        raise ActionError(_("A resolved conversation can't be snoozed."), code="resolved")
    previous = _access_snapshot(conversation)
    conversation.status, conversation.snoozed_until = Status.SNOOZED, until
    conversation.save(update_fields=["status", "snoozed_until", "updated_at"])
    events.record(conversation, "conversation.snoozed", actor=by, previous=previous, until=until.isoformat())
    _hand_out_after(conversation, previous)
    return conversation


@transaction.atomic(durable=True)
def wake(conversation: Conversation, *, by: Employee | None = None) -> Conversation:
    """Bring a snoozed conversation back to the open list (its time came, or by hand)."""
    if by is not None:
        access.require(by, Perm.SNOOZE)
    conversation = _locked(conversation)
    if conversation.status != Status.SNOOZED:
        return conversation
    previous = _access_snapshot(conversation)
    conversation.status, conversation.snoozed_until = Status.OPEN, None
    conversation.save(update_fields=["status", "snoozed_until", "updated_at"])
    reason = WakeReason.TIME if by is None else WakeReason.MANUAL
    events.record(conversation, "conversation.woken", actor=by, previous=previous, reason=reason)
    _hand_out_after(conversation, previous)
    return conversation


def _set_status(conversation: Conversation, *, by: Employee, status: str, event: str) -> Conversation:
    conversation = _locked(conversation)
    if conversation.status == status:
        return conversation
    previous = _access_snapshot(conversation)
    conversation.status, conversation.snoozed_until = status, None
    if status == Status.RESOLVED:
        conversation.waiting_since = None
    conversation.save(update_fields=["status", "snoozed_until", "waiting_since", "updated_at"])
    events.record(conversation, event, actor=by, previous=previous)
    _hand_out_after(conversation, previous)
    return conversation


# --- Automatic assignment: the queue is handed out under the routing lock ----------------------------

HAND_OUT_BATCH = 50


@transaction.atomic(savepoint=False)
def hand_out(company_id: int, *, current: Conversation | None = None) -> list[int]:
    """Give queued conversations to agents with room, in queue order; returns the ids assigned.

    Joins the caller's transaction when there is one (the action that queued a conversation
    or freed an agent), so the change and its consequence commit together. ``current`` is a
    conversation the caller holds: if it is handed out, that object is updated in place.
    The rules are in ``routing``; the lock makes the counts it reads the truth until commit.
    """
    routing.lock(company_id)
    roster = routing.Roster.load(company_id)
    assigned: list[int] = []
    full: set[int | None] = set()  # teams (None: no team) nobody eligible can take more of
    while roster.has_room():
        waiting = routing.queue(company_id).exclude(team_id__in=[t for t in full if t is not None])
        if None in full:
            waiting = waiting.exclude(team__isnull=True)
        # SKIP LOCKED: a conversation another transaction holds is its business (an inbound
        # message routes its own); waiting for it while holding the lock could deadlock.
        batch = list(
            waiting.select_for_update(of=("self",), skip_locked=True).select_related("contact", "channel", "team")[
                :HAND_OUT_BATCH
            ]
        )
        if not batch:
            break
        for conversation in batch:
            if conversation.team_id in full:
                continue
            agent = roster.pick(conversation.team_id)
            if agent is None:
                full.add(conversation.team_id)
                continue
            if current is not None and conversation.pk == current.pk:
                conversation = current
            _auto_assign(conversation, agent, roster)
            assigned.append(conversation.pk)
            if not roster.has_room():
                break
    return assigned


def release_assigned(employee: Employee, *, by: Employee) -> list[int]:
    """Give back the open and snoozed conversations of someone who can no longer answer them.

    For a deactivated employee: each is unassigned (a ``conversation.assigned`` event by
    ``by``, with ``reason: "released"``) and the open ones go to their teams' queues and are
    handed out at once; a snoozed one is routed when it wakes. Resolved ones keep their
    assignee, for the record. Runs inside the caller's transaction; the routing lock comes
    before the conversations' rows (lock order: company, routing, rows). Returns their ids.
    """
    routing.lock(employee.company_id)
    held = list(
        Conversation.objects.select_for_update(of=("self",))
        .filter(
            company_id=employee.company_id,
            assignee=employee,
            status__in=[Status.OPEN, Status.SNOOZED],
            deleted_at__isnull=True,
        )
        .select_related("contact", "channel", "team")
        .order_by("pk")
    )
    for conversation in held:
        previous = _access_snapshot(conversation)
        conversation.assignee = None
        conversation.save(update_fields=["assignee", "updated_at"])
        events.record(conversation, "conversation.assigned", actor=by, previous=previous, reason="released")
    if any(c.status == Status.OPEN for c in held):
        hand_out(employee.company_id)
    return [c.pk for c in held]


def _auto_assign(conversation: Conversation, agent: routing.Agent, roster: routing.Roster) -> None:
    now = timezone.now()
    previous = _access_snapshot(conversation)
    conversation.assignee = agent.employee
    conversation.save(update_fields=["assignee", "updated_at"])
    Employee.objects.filter(pk=agent.employee.pk).update(last_assigned_at=now)
    roster.took(agent, conversation.team_id, now)
    events.record(conversation, "conversation.assigned", previous=previous, automatic=True)


def _counts_for(snapshot: dict[str, Any]) -> bool:
    """Does the conversation take a place in its assignee's capacity (open, not deleted)?"""
    return snapshot["status"] == Status.OPEN and not snapshot.get("deleted") and snapshot["assignee_id"] is not None


def _hand_out_after(conversation: Conversation, previous: dict[str, Any]) -> None:
    """After a change: if it freed an agent's place or put the conversation in the queue, hand out."""
    now = {**_access_snapshot(conversation), "deleted": conversation.deleted_at is not None}
    kept = {key: now[key] for key in ("assignee_id", "team_id")} == {
        key: previous[key] for key in ("assignee_id", "team_id")
    }
    freed = _counts_for(previous) and not (_counts_for(now) and kept)
    queued = now["status"] == Status.OPEN and not now["deleted"] and now["assignee_id"] is None
    if freed or queued:
        hand_out(conversation.company_id, current=conversation)


# --- Deleting and restoring: nothing is destroyed ----------------------------------------------------


def _audit_message(action: str, message: Message, *, by: Employee) -> None:
    """A deleted or restored message in the audit log: by id, conversation and author, never its text.

    Whoever may read the audit log is not thereby allowed to read the conversation, nor
    deleted text: the message keeps its text for those who may see it. A customer is named
    by contact id only (their name is contact data, shown only to those who see the contact).
    """
    author: dict[str, Any] = {}
    if message.author_employee_id:
        author["author"] = message.author_employee.display_name
    elif message.author_contact_id:
        author["contact"] = message.author_contact_id
    audit.record(
        action,
        company=message.conversation.company_id,
        actor=by,
        obj=message,
        object_repr=f"#{message.conversation_id}",
        after={"conversation": message.conversation_id, **author},
    )


def _refresh_preview(conversation: Conversation) -> None:
    """The list preview shows the newest message that is not deleted (customer's or reply).

    Without this a deleted message's text would live on in the list, and in the snapshot
    every later event carries, for people who may not see deleted messages.
    """
    body = (
        conversation.messages.filter(kind=MessageKind.MESSAGE, deleted_at__isnull=True)
        .order_by("-pk")
        .values_list("body", flat=True)
        .first()
    )
    preview = preview_of(body or "")
    if preview != conversation.last_message_preview:
        conversation.last_message_preview = preview
        conversation.save(update_fields=["last_message_preview", "updated_at"])


@transaction.atomic(durable=True)
def delete_message(message: Message, *, by: Employee) -> Message:
    """Mark a message deleted (who, when). Admins still see it and can restore it."""
    access.require(by, Perm.DELETE_MESSAGES)
    conversation = _locked(message.conversation)
    message = Message.objects.select_for_update().get(pk=message.pk, conversation=conversation)
    if message.kind == MessageKind.SYSTEM:
        raise ActionError(_("System messages can't be deleted."), code="system_message")
    if message.deleted_at:
        return message
    message.deleted_at, message.deleted_by = timezone.now(), by
    message.save(update_fields=["deleted_at", "deleted_by"])
    _refresh_preview(conversation)
    message.conversation = conversation
    # The event carries no text: sockets of people who may not see deleted text get none.
    events.record(conversation, "message.deleted", actor=by, message=message_data(message, reveal_deleted=False))
    _audit_message("message.deleted", message, by=by)
    return message


@transaction.atomic(durable=True)
def restore_message(message: Message, *, by: Employee) -> Message:
    access.require(by, Perm.RESTORE)
    conversation = _locked(message.conversation)
    message = Message.objects.select_for_update().get(pk=message.pk, conversation=conversation)
    if not message.deleted_at:
        return message
    message.deleted_at, message.deleted_by = None, None
    message.save(update_fields=["deleted_at", "deleted_by"])
    _refresh_preview(conversation)
    message.conversation = conversation
    events.record(conversation, "message.restored", actor=by, message=message_data(message))
    _audit_message("message.restored", message, by=by)
    return message


@transaction.atomic(durable=True)
def delete_conversation(conversation: Conversation, *, by: Employee) -> Conversation:
    """Move a conversation to the Trash: it leaves every list live; admins can restore it."""
    access.require(by, Perm.DELETE_CONVERSATIONS)
    conversation = _locked(conversation)
    if conversation.deleted_at:
        return conversation
    previous = {**_access_snapshot(conversation), "deleted": False}
    conversation.deleted_at, conversation.deleted_by = timezone.now(), by
    conversation.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    events.record(conversation, "conversation.deleted", actor=by, previous=previous)
    audit.record("conversation.deleted", company=conversation.company_id, actor=by, obj=conversation)
    _hand_out_after(conversation, previous)
    return conversation


@transaction.atomic(durable=True)
def restore_conversation(conversation: Conversation, *, by: Employee) -> Conversation:
    access.require(by, Perm.RESTORE)
    conversation = _locked(conversation)
    if not conversation.deleted_at:
        return conversation
    # While it was in the Trash the customer may have opened a new conversation on the same
    # channel; both then stay, and the customer's next message goes to the newest one.
    previous = {**_access_snapshot(conversation), "deleted": True}
    conversation.deleted_at, conversation.deleted_by = None, None
    conversation.save(update_fields=["deleted_at", "deleted_by", "updated_at"])
    events.record(conversation, "conversation.restored", actor=by)
    audit.record("conversation.restored", company=conversation.company_id, actor=by, obj=conversation)
    _hand_out_after(conversation, previous)
    return conversation


# --- Read state ---------------------------------------------------------------------------------


@transaction.atomic
def mark_read(conversation: Conversation, *, employee: Employee) -> None:
    """Everything in the conversation so far counts as read by this employee."""
    last_id = conversation.messages.order_by("-pk").values_list("pk", flat=True).first() or 0
    if _mark_read(conversation, employee=employee, message_id=last_id):
        # The employee's other tabs clear their badges; a notice, not an event: nothing to replay.
        transaction.on_commit(
            partial(_tell_other_tabs, employee_id=employee.pk, conversation_id=conversation.pk, last_id=last_id)
        )


def _tell_other_tabs(*, employee_id: int, conversation_id: int, last_id: int) -> None:
    from helpdesk.realtime import notices

    try:
        notices.conversation_read(
            employee_id=employee_id, conversation_id=conversation_id, last_read_message_id=last_id
        )
    except Exception:
        # Like an event's fan-out, a notice that can't leave must not fail what was committed.
        log.exception("could not tell the other tabs of employee %s", employee_id)


def _mark_read(conversation: Conversation, *, employee: Employee, message_id: int) -> bool:
    """Move the marker forward to ``message_id``; True if it moved."""
    marker, created = ReadMarker.objects.get_or_create(
        employee=employee, conversation=conversation, defaults={"last_read_message_id": message_id}
    )
    if created:
        return True
    if marker.last_read_message_id < message_id:
        return bool(
            ReadMarker.objects.filter(pk=marker.pk, last_read_message_id__lt=message_id).update(
                last_read_message_id=message_id
            )
        )
    return False
