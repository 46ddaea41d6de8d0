"""Teams: create and edit them, their members and how their conversations are handed out."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from helpdesk.conversations import access
from helpdesk.conversations import actions as conversation_actions
from helpdesk.errors import ActionError
from helpdesk.events import audit

from ..models import AssignmentMethod, Employee, Team
from ..permissions import Perm
from ._common import _UNSET, _access_changed, _clean_name, _lock_company, _same_company


def team_state(team: Team) -> dict[str, Any]:
    return {
        "name": team.name,
        "members": sorted(team.members.values_list("display_name", flat=True)),
        "assignment_method": team.assignment_method,
        "max_open_per_agent": team.max_open_per_agent,
    }


def _unique_team_name(company_id: int, name: str, *, exclude: int | None = None) -> None:
    if Team.objects.filter(company_id=company_id, name__iexact=name).exclude(pk=exclude).exists():
        raise ActionError(_("A team named %(name)s already exists.") % {"name": name}, code="duplicate", field="name")


def _clean_assignment_method(method: str) -> str:
    if method not in AssignmentMethod.values:
        raise ActionError(
            _("Unknown assignment method: %(method)s.") % {"method": method},
            code="bad_assignment_method",
            field="assignment_method",
        )
    return method


def _clean_team_limit(limit: int | None) -> int | None:
    """Open conversations per agent in this team: empty (no team limit) or a whole number, 0 or more."""
    if limit is None:
        return None
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ActionError(
            _("The limit per agent must be a whole number, 0 or more, or empty for no limit."),
            code="bad_limit",
            field="max_open_per_agent",
        )
    if limit > 1000:
        raise ActionError(_("The limit per agent can be at most 1000."), code="bad_limit", field="max_open_per_agent")
    return limit


@transaction.atomic(durable=True)
def create_team(*, by: Employee, name: str, members: list[Employee] = ()) -> Team:
    access.require(by, Perm.MANAGE_EMPLOYEES)
    _lock_company(by.company_id)
    name = _clean_name(name)
    _unique_team_name(by.company_id, name)
    _same_company(by, *members)
    team = Team.objects.create(company_id=by.company_id, name=name)
    team.members.set(members)
    _access_changed(member.pk for member in members)
    audit.record("team.created", company=by.company_id, actor=by, obj=team, after=team_state(team))
    return team


@transaction.atomic(durable=True)
def update_team(
    team: Team,
    *,
    by: Employee,
    name: str = _UNSET,
    members: list[Employee] = _UNSET,
    assignment_method: str = _UNSET,
    max_open_per_agent: int | None = _UNSET,
) -> Team:
    """Rename a team, set its members, or how its conversations are handed out (audited)."""
    access.require(by, Perm.MANAGE_EMPLOYEES)
    _same_company(by, team)
    _lock_company(by.company_id)
    before = team_state(team)
    if name is not _UNSET:
        team.name = _clean_name(name)
        _unique_team_name(by.company_id, team.name, exclude=team.pk)
    if assignment_method is not _UNSET:
        team.assignment_method = _clean_assignment_method(assignment_method)
    if max_open_per_agent is not _UNSET:
        team.max_open_per_agent = _clean_team_limit(max_open_per_agent)
    team.save(update_fields=["name", "assignment_method", "max_open_per_agent"])
    if members is not _UNSET:
        _same_company(by, *members)
        old = set(team.members.values_list("pk", flat=True))
        team.members.set(members)
        _access_changed(old ^ {member.pk for member in members})
    audit.record("team.updated", company=by.company_id, actor=by, obj=team, before=before, after=team_state(team))
    # Automatic now, a higher limit or new members: the team's queue may have takers.
    conversation_actions.hand_out(by.company_id)
    return team
