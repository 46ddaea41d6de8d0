"""An agent moves a conversation along: assign it, set its priority, resolve, reopen, snooze, wake."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError
from helpdesk.events import log as events

from .. import access
from ..csat import enabled as csat_enabled
from ..models import Conversation, Priority, Status
from ..snooze import clean_until
from ._common import _UNSET, WakeReason, _access_snapshot, _locked
from .csat import _count_resolution, _offer_survey
from .handout import _hand_out_after


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
    extra = {}
    if status == Status.RESOLVED:
        conversation.waiting_since = None
        extra["resolution"] = _count_resolution(conversation)
    conversation.save(update_fields=["status", "snoozed_until", "waiting_since", "resolutions", "updated_at"])
    if status == Status.RESOLVED:
        extra["survey"] = csat_enabled(conversation.channel)
    events.record(conversation, event, actor=by, previous=previous, **extra)
    if status == Status.RESOLVED:
        _offer_survey(conversation, by=by)
    _hand_out_after(conversation, previous)
    return conversation
