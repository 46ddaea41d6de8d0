"""The one gate: who may see which conversation, and who may do what.

Every employee-facing query starts from :func:`visible_conversations`. Socket groups and
event audiences are derived here too, so pages, the API and websockets agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee, Scope

from .models import Conversation


def visible_conversations(employee: Employee, *, include_deleted: bool = False) -> QuerySet[Conversation]:
    """The conversations this employee may see: their company first, then their role's scope."""
    if not employee.is_active:
        return Conversation.objects.none()
    qs = Conversation.objects.filter(company_id=employee.company_id)
    if not include_deleted:
        qs = qs.filter(deleted_at__isnull=True)
    scope = employee.role.scope
    if scope == Scope.ALL:
        return qs
    # A conversation assigned directly to the employee is always theirs to see.
    mine = Q(assignee_id=employee.pk)
    if scope == Scope.TEAMS:
        return qs.filter(mine | Q(team__in=employee.teams.all()))
    return qs.filter(mine)


def get_conversation(employee: Employee, conversation_id: int | str) -> Conversation:
    """One visible conversation, or 404: the same answer for "missing" and "not yours"."""
    try:
        pk = int(conversation_id)
    except (TypeError, ValueError):
        raise Http404 from None
    conversation = (
        visible_conversations(employee).select_related("contact", "channel", "assignee", "team").filter(pk=pk).first()
    )
    if conversation is None:
        raise Http404(_("No such conversation."))
    return conversation


def require(employee: Employee, perm: str) -> None:
    if not employee.can(perm):
        raise PermissionDenied(_("Your role does not allow this."))


@dataclass(frozen=True)
class Viewer:
    """What a socket needs to know about its employee to filter events without a query."""

    employee_id: int
    company_id: int
    scope: str
    team_ids: frozenset[int]

    @classmethod
    def of(cls, employee: Employee) -> Viewer:
        return cls(
            employee_id=employee.pk,
            company_id=employee.company_id,
            scope=employee.role.scope,
            team_ids=frozenset(employee.teams.values_list("pk", flat=True)),
        )

    def sees(self, snapshot: dict[str, Any]) -> bool:
        """The same rule as visible_conversations, applied to a conversation snapshot."""
        if snapshot.get("company_id") != self.company_id or snapshot.get("deleted"):
            return False
        if self.scope == Scope.ALL or snapshot.get("assignee_id") == self.employee_id:
            return True
        return self.scope == Scope.TEAMS and snapshot.get("team_id") in self.team_ids

    def groups(self) -> list[str]:
        """Channel-layer groups this viewer's socket joins."""
        if self.scope == Scope.ALL:
            return [company_group(self.company_id)]
        groups = [employee_group(self.employee_id)]
        if self.scope == Scope.TEAMS:
            groups += [team_group(team_id) for team_id in sorted(self.team_ids)]
        return groups


def company_group(company_id: int) -> str:
    return f"company-{company_id}"


def team_group(team_id: int) -> str:
    return f"team-{team_id}"


def employee_group(employee_id: int) -> str:
    return f"employee-{employee_id}"


def event_groups(event: dict[str, Any]) -> set[str]:
    """Every group with a socket that may see the conversation now or could see it before."""
    snapshots = [event["payload"]["conversation"]]
    if event["payload"].get("previous"):
        snapshots.append({**snapshots[0], **event["payload"]["previous"]})
    groups = {company_group(snapshots[0]["company_id"])}
    for snapshot in snapshots:
        if snapshot.get("team_id"):
            groups.add(team_group(snapshot["team_id"]))
        if snapshot.get("assignee_id"):
            groups.add(employee_group(snapshot["assignee_id"]))
    return groups
