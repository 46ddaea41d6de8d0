"""Agents' messages: replies to the customer and internal notes with their @mentions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError, ConflictError
from helpdesk.events import log as events

from .. import access, queries
from ..models import Conversation, Direction, Mention, Message, MessageKind, Status
from ..snapshots import message_data, preview_of
from . import arrival
from ._common import WakeReason, _access_snapshot, _clean_body, _locked
from .attachments import bind_uploads
from .delivery import _queue_delivery
from .handout import _hand_out_after
from .reading import _mark_read


def post_reply(
    conversation: Conversation,
    *,
    by: Employee,
    body: str,
    attachment_ids: Sequence[int] = (),
    idempotency_key: str | None = None,
) -> Message:
    """An agent's answer to the customer; it leaves through the conversation's channel.

    ``attachment_ids``: the agent's own uploads in this conversation (``upload_attachment``),
    bound to the reply in its transaction, so its delivery carries them. With files the text
    may be empty.

    ``idempotency_key``: see ``_once``; a resend under a stored key returns that message with
    ``replayed`` set, and writes, records and queues nothing.
    """
    return _once(
        lambda: _post_reply(
            conversation, by=by, body=body, attachment_ids=attachment_ids, idempotency_key=idempotency_key
        ),
        conversation,
        by=by,
        key=idempotency_key,
        kind=MessageKind.MESSAGE,
        body=body,
        attachment_ids=attachment_ids,
    )


@transaction.atomic(durable=True)
def _post_reply(
    conversation: Conversation, *, by: Employee, body: str, attachment_ids: Sequence[int], idempotency_key: str | None
) -> Message:
    access.require(by, Perm.REPLY)
    if not attachment_ids and connection.vendor == "postgresql":
        # A plain reply: one statement (arrival.reply), unless it wakes a snoozed conversation.
        written = arrival.reply(
            conversation_id=conversation.pk,
            by=by,
            body=_clean_body(body),
            now=timezone.now(),
            idempotency_key=idempotency_key,
        )
        if written is not None:
            locked, message = written
            conversation.__dict__.update(locked.__dict__)
            _queue_delivery(message, conversation.channel)
            events.record(conversation, "message.created", actor=by, message=message_data(message))
            return message
    return _add_agent_message(
        conversation,
        by=by,
        body=body,
        kind=MessageKind.MESSAGE,
        attachment_ids=attachment_ids,
        idempotency_key=idempotency_key,
    )


def add_note(
    conversation: Conversation,
    *,
    by: Employee,
    body: str,
    mention_employees: Sequence[Employee] = (),
    mention_teams: Sequence[Team] = (),
    attachment_ids: Sequence[int] = (),
    idempotency_key: str | None = None,
) -> Message:
    """An internal note: seen by the team, never sent to the customer.

    It may @mention employees and teams (by id, never by parsing names out of the text).
    Mentioning someone who can't see the conversation is refused, so a mention never
    reveals it; a team's mention reaches those of its members who can see it.
    ``idempotency_key`` as for ``post_reply``.
    """
    return _once(
        lambda: _add_note(
            conversation,
            by=by,
            body=body,
            mention_employees=mention_employees,
            mention_teams=mention_teams,
            attachment_ids=attachment_ids,
            idempotency_key=idempotency_key,
        ),
        conversation,
        by=by,
        key=idempotency_key,
        kind=MessageKind.NOTE,
        body=body,
        attachment_ids=attachment_ids,
    )


@transaction.atomic(durable=True)
def _add_note(
    conversation: Conversation,
    *,
    by: Employee,
    body: str,
    mention_employees: Sequence[Employee],
    mention_teams: Sequence[Team],
    attachment_ids: Sequence[int],
    idempotency_key: str | None,
) -> Message:
    access.require(by, Perm.ADD_NOTES)
    employees = list({e.pk: e for e in mention_employees}.values())
    teams = list({t.pk: t for t in mention_teams}.values())
    return _add_agent_message(
        conversation,
        by=by,
        body=body,
        kind=MessageKind.NOTE,
        mentions=(employees, teams),
        attachment_ids=attachment_ids,
        idempotency_key=idempotency_key,
    )


def _once(
    write: Callable[[], Message],
    conversation: Conversation,
    *,
    by: Employee,
    key: str | None,
    kind: str,
    body: str,
    attachment_ids: Sequence[int],
) -> Message:
    """Write an agent's message once per key: a resend under a key already stored is a replay.

    The key (``Message.idempotency_key``) is unique per author and conversation in the
    database, so the write is simply tried: a resend's insert is refused (its transaction,
    the event and the delivery with it, rolled back) and the stored message is returned,
    marked ``replayed``. Two resends racing each other: the second waits for the first's
    commit, then is refused the same way. A fresh key costs no query more than no key.
    The same key with another message (kind, text or files) is a client's mistake: 409.
    """
    if key is None:
        return write()
    try:
        return write()
    except IntegrityError:
        # As the thread shows it (its files, its delivery so far): one query on the key's index.
        stored = queries.thread(conversation).filter(author_employee=by, idempotency_key=key).first()
        if stored is None:  # another constraint refused the message: not a resend
            raise
    files = {f.pk for f in stored.attachments.all()}
    if stored.kind != kind or stored.body != (body or "").strip() or files != set(attachment_ids):
        raise ConflictError(
            _("This Idempotency-Key was already used for a different message. Send a new message with a new key."),
            code="idempotency_conflict",
        )
    stored.replayed = True
    return stored


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
    attachment_ids: Sequence[int] = (),
    idempotency_key: str | None = None,
) -> Message:
    body = _clean_body(body, may_be_empty=bool(attachment_ids))
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
        idempotency_key=idempotency_key,
    )
    # Bound before the delivery and the event: the worker and every reader see the files.
    files = bind_uploads(message, attachment_ids, by_employee=by)
    _queue_delivery(message, conversation.channel)
    conversation.last_activity_at = now
    changed = ["status", "snoozed_until", "last_activity_at", "updated_at"]
    if is_reply:
        # The customer has their answer; the list preview shows what they were told.
        conversation.waiting_since = None
        conversation.last_message_preview = preview_of(body, [f.name for f in files])
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
