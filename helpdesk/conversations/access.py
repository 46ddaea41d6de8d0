"""The one gate: who may see which conversation, and who may do what.

Every employee-facing query starts from :func:`visible_conversations`. Socket groups and
event audiences are derived here too, so pages, the API and websockets agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from helpdesk.accounts.models import ApiToken, Employee, Role, Scope, Team
from helpdesk.accounts.permissions import Perm

from .models import (
    Attachment,
    AttachmentStatus,
    CannedResponse,
    Channel,
    Contact,
    Conversation,
    MessageKind,
    QuickAnswer,
)


def visible_conversations(
    employee: Employee, *, include_deleted: bool = False, teams: Iterable[int] | QuerySet | None = None
) -> QuerySet[Conversation]:
    """The conversations this employee may see: their company first, then their role's scope.

    ``teams``: the employee's team ids when the caller has just read them (a socket's
    :class:`Viewer`), else they are read here (:func:`team_ids`). A lookup of one row passes
    :func:`_teams_subquery` instead: a row or two need no index plan, and it saves the query.
    """
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
        if teams is None:
            teams = team_ids(employee)
        elif not isinstance(teams, QuerySet):
            teams = list(teams)
        return qs.filter(mine | Q(team_id__in=teams))
    return qs.filter(mine)


def team_ids(employee: Employee) -> list[int]:
    """The ids of the employee's teams, read now (one small query, never cached: scope follows them).

    Given to queries as values, not as a subquery: then "assigned to me OR in my teams" is two
    index ranges PostgreSQL can OR together, where a subquery makes it test every row of the
    company (a team agent's tab count: 60 ms -> 9 ms at 100,000 conversations).
    """
    return list(employee.teams.values_list("pk", flat=True))


def _teams_subquery(employee: Employee) -> QuerySet:
    """The employee's teams as a subquery of the caller's query: for lookups of a few rows by id."""
    return employee.teams.values("pk")


def audience(conversation: Conversation) -> QuerySet[Employee]:
    """The active employees who may see this conversation: visible_conversations read the other way round."""
    if conversation.deleted_at is not None:
        return Employee.objects.none()
    rule = Q(role__scope=Scope.ALL)
    if conversation.assignee_id:
        rule |= Q(pk=conversation.assignee_id)
    if conversation.team_id:
        rule |= Q(role__scope=Scope.TEAMS, teams=conversation.team_id)
    return Employee.objects.filter(rule, company_id=conversation.company_id, is_active=True).distinct()


def get_conversation(employee: Employee, conversation_id: int | str) -> Conversation:
    """One visible conversation, or 404: the same answer for "missing" and "not yours"."""
    try:
        pk = int(conversation_id)
    except (TypeError, ValueError):
        raise Http404 from None
    conversation = (
        visible_conversations(employee, teams=_teams_subquery(employee))
        .select_related("contact", "channel", "assignee", "team")
        .filter(pk=pk)
        .first()
    )
    if conversation is None:
        raise Http404(_("No such conversation."))
    return conversation


def get_conversations(employee: Employee, conversation_ids: list[int]) -> list[Conversation]:
    """Every one of these visible conversations (by id), or 404 if any is missing or not theirs to see."""
    return _get_all(
        visible_conversations(employee, teams=_teams_subquery(employee)).select_related(
            "contact", "channel", "assignee", "team"
        ),
        conversation_ids,
    )


def require(employee: Employee, perm: str) -> None:
    if not employee.can(perm):
        raise PermissionDenied(_("Your role does not allow this."))


def sees_deleted(employee: Employee) -> bool:
    """Deleted messages show their text (struck through) only to holders of this permission."""
    return employee.can(Perm.SEE_DELETED)


def trash(employee: Employee) -> QuerySet[Conversation]:
    """Deleted conversations this employee may see and restore."""
    require(employee, Perm.RESTORE)
    return visible_conversations(employee, include_deleted=True).filter(deleted_at__isnull=False)


def get_deleted_conversation(employee: Employee, conversation_id: int | str) -> Conversation:
    return _get(trash(employee).select_related("contact", "channel", "assignee", "team"), conversation_id)


# --- Files ---------------------------------------------------------------------------------------
# A file is seen by whoever may see its message: an employee through the conversation gate (a
# deleted message's files only with the permission to see deleted messages), the visitor whose
# conversation it is (never a note's file, never a deleted message's). An upload not sent yet
# is its uploader's alone. Only ready files are ever served; the same None for "missing",
# "not yours" and "not ready".


def _ready_files():
    return Attachment.objects.select_related("message").filter(status=AttachmentStatus.READY).exclude(file="")


def visible_attachment(employee: Employee, attachment_id: int) -> Attachment | None:
    """A ready file this employee may open, or None."""
    attachment = _ready_files().filter(pk=attachment_id, conversation__in=visible_conversations(employee)).first()
    if attachment is None:
        return None
    message = attachment.message
    if message is None:
        return attachment if attachment.uploaded_by_employee_id == employee.pk else None
    if message.deleted_at is not None and not sees_deleted(employee):
        return None
    return attachment


def visitor_attachment(contact_id: int, attachment_id: int) -> Attachment | None:
    """A ready file the visitor (a contact) may open in their own conversation, or None."""
    attachment = (
        _ready_files()
        .filter(pk=attachment_id, conversation__contact_id=contact_id, conversation__deleted_at__isnull=True)
        .first()
    )
    if attachment is None:
        return None
    message = attachment.message
    if message is None:
        return attachment if attachment.uploaded_by_contact_id == contact_id else None
    if message.deleted_at is not None or message.kind != MessageKind.MESSAGE:
        return None
    return attachment


# --- The company's people and settings -----------------------------------------------------------
# Each getter answers 404 for another company's id, exactly as for one that does not exist.


def _get(qs: QuerySet, pk: int | str):
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise Http404 from None
    obj = qs.filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


def _get_all(qs: QuerySet, pks: list[int]) -> list:
    wanted = set(pks)
    found = list(qs.filter(pk__in=wanted).order_by("pk")) if wanted else []
    if len(found) != len(wanted):
        raise Http404
    return found


def company_employees(viewer: Employee) -> QuerySet[Employee]:
    return Employee.objects.filter(company_id=viewer.company_id).select_related("user", "role")


def get_employee(viewer: Employee, employee_id: int | str) -> Employee:
    return _get(company_employees(viewer), employee_id)


def get_employees(viewer: Employee, employee_ids: list[int]) -> list[Employee]:
    """Every one of these employees, or 404 if any id is missing or another company's."""
    return _get_all(company_employees(viewer), employee_ids)


def company_teams(viewer: Employee) -> QuerySet[Team]:
    return Team.objects.filter(company_id=viewer.company_id)


def get_team(viewer: Employee, team_id: int | str) -> Team:
    return _get(company_teams(viewer), team_id)


def get_teams(viewer: Employee, team_ids: list[int]) -> list[Team]:
    """Every one of these teams, or 404 if any id is missing or another company's."""
    return _get_all(company_teams(viewer), team_ids)


def company_roles(viewer: Employee) -> QuerySet[Role]:
    return Role.objects.filter(company_id=viewer.company_id)


def get_role(viewer: Employee, role_id: int | str) -> Role:
    return _get(company_roles(viewer), role_id)


def company_channels(viewer: Employee) -> QuerySet[Channel]:
    """The company's channels in Settings and the API: disabled ones too, removed ones not."""
    return Channel.objects.filter(company_id=viewer.company_id, removed_at__isnull=True)


def get_channel(viewer: Employee, channel_id: int | str) -> Channel:
    return _get(company_channels(viewer), channel_id)


def own_api_tokens(viewer: Employee) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(employee_id=viewer.pk)


def get_own_api_token(viewer: Employee, token_id: int | str) -> ApiToken:
    """One of the viewer's own tokens; anyone else's answers 404, like a missing one."""
    return _get(own_api_tokens(viewer), token_id)


def visible_contacts(viewer: Employee) -> QuerySet[Contact]:
    """Contacts of the company; a narrower scope sees only contacts of chats it can see."""
    qs = Contact.objects.filter(company_id=viewer.company_id)
    if not viewer.is_active:
        return qs.none()
    if viewer.role.scope == Scope.ALL:
        return qs
    return qs.filter(pk__in=visible_conversations(viewer).values("contact_id"))


def get_contact(viewer: Employee, contact_id: int | str) -> Contact:
    return _get(visible_contacts(viewer), contact_id)


# --- Canned responses and quick answers ----------------------------------------------------------------


def visible_canned_responses(viewer: Employee) -> QuerySet[CannedResponse]:
    """The live canned responses an employee may use: the company's and their own (never a colleague's)."""
    if not viewer.is_active:
        return CannedResponse.objects.none()
    return CannedResponse.objects.filter(
        Q(owner__isnull=True) | Q(owner_id=viewer.pk), company_id=viewer.company_id, archived_at__isnull=True
    )


def get_canned_response(viewer: Employee, canned_id: int | str) -> CannedResponse:
    """One the viewer may use; a colleague's personal one is a 404, like another company's."""
    return _get(visible_canned_responses(viewer), canned_id)


def company_quick_answers(viewer: Employee) -> QuerySet[QuickAnswer]:
    require(viewer, Perm.MANAGE_CANNED)
    return QuickAnswer.objects.filter(company_id=viewer.company_id, archived_at__isnull=True)


def get_quick_answer(viewer: Employee, quick_answer_id: int | str) -> QuickAnswer:
    return _get(company_quick_answers(viewer), quick_answer_id)


# --- Who may hand out which powers ------------------------------------------------------------------

SCOPE_RANK = {Scope.ASSIGNED: 0, Scope.TEAMS: 1, Scope.ALL: 2}


def outranks(viewer: Employee, role: Role) -> bool:
    """May ``viewer`` give this role to someone, or manage someone who holds it?

    Only if it grants nothing the viewer lacks (permissions and breadth of scope), unless the
    viewer manages roles anyway: an admin can't make anyone more powerful than themselves.
    """
    if viewer.can(Perm.MANAGE_ROLES):
        return True
    mine = viewer.role
    return set(role.permissions) <= set(mine.permissions) and SCOPE_RANK[role.scope] <= SCOPE_RANK[mine.scope]


def require_outranks(viewer: Employee, role: Role) -> None:
    if not outranks(viewer, role):
        raise PermissionDenied(_("That role has powers your own role does not have."))


def needs_2fa(employee: Employee) -> bool:
    """Must this employee sign in with a second factor? When their company requires it of admins."""
    return employee.company.require_2fa_for_admins and (
        employee.role.allows(Perm.MANAGE_EMPLOYEES) or employee.role.allows(Perm.MANAGE_ROLES)
    )


def may_use_session(employee: Employee) -> bool:
    """A signed-in session may be used, unless the company requires a second factor not set up yet."""
    return employee.has_2fa or not needs_2fa(employee)


def can_manage_roles(employee: Employee) -> bool:
    """The super-admin's power; a company always keeps at least one active holder."""
    return employee.can(Perm.MANAGE_ROLES)


@dataclass(frozen=True)
class Viewer:
    """What a socket needs to know about its employee to filter events without a query."""

    employee_id: int
    company_id: int
    scope: str
    team_ids: frozenset[int]
    sees_deleted: bool = False

    @classmethod
    def of(cls, employee: Employee) -> Viewer:
        return cls(
            employee_id=employee.pk,
            company_id=employee.company_id,
            scope=employee.role.scope,
            team_ids=frozenset(employee.teams.values_list("pk", flat=True)),
            sees_deleted=sees_deleted(employee),
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


def snapshot_groups(snapshot: dict[str, Any]) -> set[str]:
    """The groups with a socket that may see a conversation in this state."""
    groups = {company_group(snapshot["company_id"])}
    if snapshot.get("team_id"):
        groups.add(team_group(snapshot["team_id"]))
    if snapshot.get("assignee_id"):
        groups.add(employee_group(snapshot["assignee_id"]))
    return groups


def event_groups(event: dict[str, Any]) -> set[str]:
    """Every group with a socket that may see the conversation now or could see it before."""
    snapshot = event["payload"]["conversation"]
    groups = snapshot_groups(snapshot)
    if event["payload"].get("previous"):
        groups |= snapshot_groups({**snapshot, **event["payload"]["previous"]})
    return groups
