"""Presence: online, away or offline.

Not audited: every change is a PresenceChange row (the statistics read them), and colleagues'
inboxes hear of it after commit. Going online takes the routing lock first (before the
employee's row, the order routing keeps) and hands out the queue: there is someone new.
"""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.conversations import actions as conversation_actions
from helpdesk.conversations import routing
from helpdesk.errors import ActionError

from .. import presence as presence_reads
from ..models import Employee, Presence, PresenceChange


def _change_presence(employee: Employee, *, presence: str, source: str) -> Employee:
    now = timezone.now()
    employee.presence = presence
    fields = ["presence"]
    if presence == Presence.ONLINE:
        employee.last_seen_at = now  # whoever says "online" is here now; the heartbeat keeps it so
        fields.append("last_seen_at")
    employee.save(update_fields=fields)
    PresenceChange.objects.create(
        company_id=employee.company_id, employee=employee, presence=presence, source=source, at=now
    )
    transaction.on_commit(
        partial(_publish_presence, employee.company_id, employee.pk, presence_reads.shown_presence(employee))
    )
    if presence == Presence.ONLINE:
        conversation_actions.hand_out(employee.company_id)
    return employee


def _publish_presence(company_id: int, employee_id: int, presence: str) -> None:
    from helpdesk.realtime import fanout

    fanout.publish_presence(company_id=company_id, employee_id=employee_id, presence=presence)


def _locked_employee(employee: Employee, *, going_online: bool) -> Employee:
    if going_online:
        routing.lock(employee.company_id)
    return Employee.objects.select_for_update().get(pk=employee.pk)


@transaction.atomic(durable=True)
def set_presence(employee: Employee, *, presence: str) -> Employee:
    """The employee says they are online, away or offline (the top bar's menu, or the API)."""
    if presence not in Presence.values:
        raise ActionError(
            _("Presence must be one of: %(choices)s.") % {"choices": ", ".join(Presence.values)},
            code="bad_presence",
            field="presence",
        )
    if not employee.is_active:
        raise ActionError(_("That employee is deactivated."), code="inactive")
    row = _locked_employee(employee, going_online=presence == Presence.ONLINE)
    if row.presence == presence:
        if presence == Presence.ONLINE:
            # Online already, maybe with no inbox open for a while: here again, so eligible again.
            Employee.objects.filter(pk=row.pk).update(last_seen_at=timezone.now())
            conversation_actions.hand_out(row.company_id)
        return row
    return _change_presence(row, presence=presence, source=PresenceChange.Source.MANUAL)


def _came_back(employee: Employee, *, connecting: bool) -> bool:
    """Does an open inbox tab make them online? Offline: when the tab opens. Away: only if the
    away was automatic (no tab for a while); an away they chose themselves stays."""
    if employee.presence == Presence.OFFLINE:
        return connecting
    if employee.presence == Presence.AWAY:
        last = PresenceChange.objects.filter(employee=employee).order_by("-at", "-pk").first()
        return last is not None and last.source == PresenceChange.Source.AUTOMATIC
    return False


def presence_from_inbox(employee_id: int, *, connecting: bool) -> Employee:
    """An inbox tab opened (``connecting``) or pinged: bring the employee online if it should.

    The question is asked without locks first: a ping of someone who chose "away" writes nothing.
    """
    employee = Employee.objects.get(pk=employee_id)
    if not employee.is_active or not _came_back(employee, connecting=connecting):
        return employee
    with transaction.atomic(durable=True):
        row = _locked_employee(employee, going_online=True)
        if not _came_back(row, connecting=connecting):
            return row
        return _change_presence(row, presence=Presence.ONLINE, source=PresenceChange.Source.CONNECTION)


@transaction.atomic(durable=True)
def mark_away_if_idle(employee_id: int) -> bool:
    """Online without a heartbeat for PRESENCE_TIMEOUT_SECONDS: away (automatic). True if changed."""
    row = Employee.objects.select_for_update().get(pk=employee_id)
    # Re-checked under the lock: a heartbeat may have come in since the task listed them.
    if row.presence != Presence.ONLINE or (row.last_seen_at and row.last_seen_at >= presence_reads.fresh_since()):
        return False
    _change_presence(row, presence=Presence.AWAY, source=PresenceChange.Source.AUTOMATIC)
    return True
