"""The one writer for administration: roles, employees, teams, company settings, channels,
API tokens and two-factor sign-in.

Each action checks the actor's permission through ``access``, runs in one transaction,
locks the company row first (so two admins can't race past a rule such as "a company
keeps a super-admin") and writes an audit row with the values before and after.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import time
from functools import partial
from typing import Any

import pyotp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from helpdesk.conversations import access, routing
from helpdesk.conversations import actions as conversation_actions
from helpdesk.conversations.models import Channel
from helpdesk.errors import ActionError
from helpdesk.events import audit

from .. import presence as presence_reads
from ..models import (
    ApiToken,
    AssignmentMethod,
    Company,
    CompanyLogo,
    Employee,
    Presence,
    PresenceChange,
    Role,
    Scope,
    Team,
    username_for,
    validate_timezone,
)
from ..permissions import Perm

_UNSET: Any = object()
EMAIL_LENGTH = 254  # the e-mail column of django.contrib.auth's user (RFC 5321's limit)
WEEKDAYS = range(7)
log = logging.getLogger(__name__)


# --- Shared rules --------------------------------------------------------------------------------------


def _lock_company(company_id: int) -> Company:
    """Serialise administrative changes within one company (cheap: admins are few)."""
    return Company.objects.select_for_update().get(pk=company_id)


def _same_company(by: Employee, *objects: Any) -> None:
    for obj in objects:
        if obj is not None and obj.company_id != by.company_id:
            raise ActionError(_("That belongs to another company."), code="foreign")


def _ensure_roles_can_still_be_managed(company_id: int) -> None:
    """Refuse any change that would leave the company without an active super-admin."""
    managing = [
        role.pk
        for role in Role.objects.filter(company_id=company_id, archived_at__isnull=True)
        if Perm.MANAGE_ROLES in role.permissions
    ]
    if not Employee.objects.filter(company_id=company_id, is_active=True, role_id__in=managing).exists():
        raise ActionError(
            _("The company must keep at least one active employee who can manage roles (a super-admin)."),
            code="last_super_admin",
        )


def _access_changed(employee_ids: Any) -> None:
    """After commit, their open inbox sockets stop: they were opened with the old access.

    Registered before anything else the action queues for after commit (a hand-out's
    events), so the sockets hear of it before any event they may no longer see.
    """
    ids = sorted(set(employee_ids))
    if ids:
        transaction.on_commit(partial(_tell_inboxes, ids))


def _tell_inboxes(employee_ids: list[int]) -> None:
    from helpdesk.realtime import notices

    try:
        notices.access_changed(employee_ids)
    except Exception:  # Redis away for a moment: each socket re-checks its access on resume
        log.exception("could not tell inboxes of employees %s that their access changed", employee_ids)


def _clean_name(name: str, *, field: str = "name", limit: int = 100) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ActionError(_("The name can't be empty."), code="empty_name", field=field)
    if len(name) > limit:
        raise ActionError(
            _("The name can be at most %(limit)s characters long.") % {"limit": limit}, code="too_long", field=field
        )
    return name


# --- Roles ------------------------------------------------------------------------------------------------


def role_state(role: Role) -> dict[str, Any]:
    return {
        "name": role.name,
        "scope": role.scope,
        "permissions": sorted(role.permissions),
        "archived": role.archived,
    }


def _clean_permissions(permissions: list[str]) -> list[str]:
    unknown = sorted(set(permissions) - set(Perm.values))
    if unknown:
        raise ActionError(
            _("Unknown permission: %(names)s.") % {"names": ", ".join(unknown)}, code="unknown_permission"
        )
    return sorted(set(permissions))


def _clean_scope(scope: str) -> str:
    if scope not in Scope.values:
        raise ActionError(_("Unknown conversation access: %(scope)s.") % {"scope": scope}, code="unknown_scope")
    return scope


def _unique_role_name(company_id: int, name: str, *, exclude: int | None = None) -> None:
    taken = Role.objects.filter(company_id=company_id, name__iexact=name).exclude(pk=exclude)
    if taken.exists():
        raise ActionError(_("A role named %(name)s already exists.") % {"name": name}, code="duplicate", field="name")


@transaction.atomic(durable=True)
def create_role(*, by: Employee, name: str, permissions: list[str], scope: str) -> Role:
    access.require(by, Perm.MANAGE_ROLES)
    _lock_company(by.company_id)
    name = _clean_name(name)
    _unique_role_name(by.company_id, name)
    role = Role.objects.create(
        company_id=by.company_id, name=name, permissions=_clean_permissions(permissions), scope=_clean_scope(scope)
    )
    audit.record("role.created", company=by.company_id, actor=by, obj=role, after=role_state(role))
    return role


@transaction.atomic(durable=True)
def update_role(
    role: Role, *, by: Employee, name: str = _UNSET, permissions: list[str] = _UNSET, scope: str = _UNSET
) -> Role:
    """Rename a role, change what it allows or how much it sees. Never the editor's own role."""
    access.require(by, Perm.MANAGE_ROLES)
    _same_company(by, role)
    _lock_company(by.company_id)
    role = Role.objects.select_for_update().get(pk=role.pk)
    if role.pk == by.role_id:
        raise ActionError(_("You can't edit the role you hold yourself."), code="own_role")
    if role.archived:
        raise ActionError(_("An archived role can't be edited; unarchive it first."), code="archived")
    before = role_state(role)
    if name is not _UNSET:
        role.name = _clean_name(name)
        _unique_role_name(by.company_id, role.name, exclude=role.pk)
    if permissions is not _UNSET:
        role.permissions = _clean_permissions(permissions)
    if scope is not _UNSET:
        role.scope = _clean_scope(scope)
    role.save(update_fields=["name", "permissions", "scope"])
    if (role.scope, sorted(role.permissions)) != (before["scope"], before["permissions"]):
        _access_changed(Employee.objects.filter(role=role, is_active=True).values_list("pk", flat=True))
    _ensure_roles_can_still_be_managed(by.company_id)
    audit.record("role.updated", company=by.company_id, actor=by, obj=role, before=before, after=role_state(role))
    return role


@transaction.atomic(durable=True)
def archive_role(role: Role, *, by: Employee) -> Role:
    """Retire a role: it stays (statistics and history keep its name) but nobody new gets it."""
    access.require(by, Perm.MANAGE_ROLES)
    _same_company(by, role)
    _lock_company(by.company_id)
    role = Role.objects.select_for_update().get(pk=role.pk)
    if role.pk == by.role_id:
        raise ActionError(_("You can't edit the role you hold yourself."), code="own_role")
    if role.builtin:
        raise ActionError(_("Built-in roles can't be archived."), code="builtin")
    if role.archived:
        return role
    holders = Employee.objects.filter(role=role, is_active=True).count()
    if holders:
        raise ActionError(
            ngettext(
                "%(count)s active employee holds this role; give them another role first.",
                "%(count)s active employees hold this role; give them another role first.",
                holders,
            )
            % {"count": holders},
            code="role_in_use",
        )
    before = role_state(role)
    role.archived_at = timezone.now()
    role.save(update_fields=["archived_at"])
    _ensure_roles_can_still_be_managed(by.company_id)
    audit.record("role.archived", company=by.company_id, actor=by, obj=role, before=before, after=role_state(role))
    return role


@transaction.atomic(durable=True)
def unarchive_role(role: Role, *, by: Employee) -> Role:
    access.require(by, Perm.MANAGE_ROLES)
    _same_company(by, role)
    _lock_company(by.company_id)
    role = Role.objects.select_for_update().get(pk=role.pk)
    if not role.archived:
        return role
    before = role_state(role)
    role.archived_at = None
    role.save(update_fields=["archived_at"])
    audit.record("role.unarchived", company=by.company_id, actor=by, obj=role, before=before, after=role_state(role))
    return role


# --- Employees ---------------------------------------------------------------------------------------------


def employee_state(employee: Employee) -> dict[str, Any]:
    return {
        "name": employee.display_name,
        "email": employee.user.email,
        "role": employee.role.name,
        "teams": sorted(employee.teams.values_list("name", flat=True)),
        "capacity": employee.capacity,
        "active": employee.is_active,
    }


def _givable_role(by: Employee, role: Role) -> Role:
    _same_company(by, role)
    role = Role.objects.get(pk=role.pk)  # its archived state as it is now, not as the caller saw it
    if role.archived:
        raise ActionError(_("An archived role can't be given to anyone."), code="archived_role", field="role")
    access.require_outranks(by, role)
    return role


def _clean_teams(by: Employee, teams: list[Team]) -> list[Team]:
    _same_company(by, *teams)
    return list(teams)


def _clean_capacity(capacity: int) -> int:
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
        raise ActionError(_("Capacity must be a whole number, 0 or more."), code="bad_capacity", field="capacity")
    if capacity > 1000:
        raise ActionError(_("Capacity can be at most 1000."), code="bad_capacity", field="capacity")
    return capacity


@transaction.atomic(durable=True)
def add_employee(
    *,
    by: Employee,
    email: str,
    name: str,
    role: Role,
    teams: list[Team] = (),
    capacity: int = 10,
) -> Employee:
    """A new person in the inbox. They get no password: send them a set-password link."""
    access.require(by, Perm.MANAGE_EMPLOYEES)
    _lock_company(by.company_id)
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except Exception:
        raise ActionError(_("Enter a valid e-mail address."), code="bad_email", field="email") from None
    if len(email) > EMAIL_LENGTH:  # Django's validator lets up to 320 through; the column holds 254
        raise ActionError(
            _("An e-mail address can be at most %(limit)s characters long.") % {"limit": EMAIL_LENGTH},
            code="too_long",
            field="email",
        )
    name = _clean_name(name, limit=150)
    role = _givable_role(by, role)
    teams = _clean_teams(by, list(teams))
    capacity = _clean_capacity(capacity)
    User = get_user_model()
    if User.objects.filter(username=username_for(email)).exists():
        raise ActionError(
            _("Someone with the e-mail %(email)s already has an account.") % {"email": email},
            code="duplicate_email",
            field="email",
        )
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username_for(email), email=email, password=None)
    except IntegrityError:
        raise ActionError(_("Someone with that e-mail already has an account."), code="duplicate_email") from None
    employee = Employee.objects.create(
        user=user, company_id=by.company_id, role=role, display_name=name, capacity=capacity
    )
    employee.teams.set(teams)
    audit.record("employee.added", company=by.company_id, actor=by, obj=employee, after=employee_state(employee))
    return employee


def _manageable(by: Employee, employee: Employee) -> Employee:
    access.require(by, Perm.MANAGE_EMPLOYEES)
    _same_company(by, employee)
    employee = Employee.objects.select_for_update(of=("self",)).select_related("user", "role").get(pk=employee.pk)
    if employee.pk != by.pk:
        access.require_outranks(by, employee.role)
    return employee


@transaction.atomic(durable=True)
def update_employee(
    employee: Employee,
    *,
    by: Employee,
    name: str = _UNSET,
    role: Role = _UNSET,
    teams: list[Team] = _UNSET,
    capacity: int = _UNSET,
) -> Employee:
    _lock_company(by.company_id)
    # Before the employee's row: routing writes employee rows while holding this lock.
    routing.lock(by.company_id)
    employee = _manageable(by, employee)
    before = employee_state(employee)
    if name is not _UNSET:
        employee.display_name = _clean_name(name, limit=150)
    if role is not _UNSET and role.pk != employee.role_id:
        if employee.pk == by.pk:
            raise ActionError(_("You can't change your own role."), code="own_role", field="role")
        employee.role = _givable_role(by, role)
    if capacity is not _UNSET:
        employee.capacity = _clean_capacity(capacity)
    employee.save(update_fields=["display_name", "role", "capacity"])
    if teams is not _UNSET:
        employee.teams.set(_clean_teams(by, list(teams)))
    _ensure_roles_can_still_be_managed(by.company_id)
    after = employee_state(employee)
    if (after["role"], after["teams"]) != (before["role"], before["teams"]):
        _access_changed([employee.pk])
    audit.record("employee.updated", company=by.company_id, actor=by, obj=employee, before=before, after=after)
    # More capacity, another team or a role that may now reply: the queue may have a taker.
    conversation_actions.hand_out(by.company_id)
    return employee


@transaction.atomic(durable=True)
def deactivate_employee(employee: Employee, *, by: Employee) -> Employee:
    """They can no longer sign in or be assigned; their messages and statistics stay.

    Their open and snoozed conversations are unassigned in the same transaction (open ones
    go straight to their teams' queues and are handed out), so no customer waits on someone
    who is gone. ``employee.released_conversation_ids`` lists them.
    """
    _lock_company(by.company_id)
    routing.lock(by.company_id)  # before the employee's row: hand-outs update it under this lock
    employee = _manageable(by, employee)
    if employee.pk == by.pk:
        raise ActionError(_("You can't deactivate yourself."), code="self")
    if not employee.is_active:
        return employee
    before = employee_state(employee)
    employee.is_active, employee.deactivated_at = False, timezone.now()
    employee.save(update_fields=["is_active", "deactivated_at"])
    employee.user.is_active = False
    employee.user.save(update_fields=["is_active"])
    _ensure_roles_can_still_be_managed(by.company_id)
    _access_changed([employee.pk])
    employee.released_conversation_ids = conversation_actions.release_assigned(employee, by=by)
    # Their sessions die with is_active (Django refuses inactive users on every request);
    # their API tokens stop working too (the token check requires an active employee).
    audit.record(
        "employee.deactivated", company=by.company_id, actor=by, obj=employee, before=before,
        after=employee_state(employee),
    )  # fmt: skip
    return employee


@transaction.atomic(durable=True)
def reactivate_employee(employee: Employee, *, by: Employee) -> Employee:
    _lock_company(by.company_id)
    employee = _manageable(by, employee)
    if employee.is_active:
        return employee
    if employee.role.archived:
        raise ActionError(_("Their role is archived; give them another role first."), code="archived_role")
    before = employee_state(employee)
    employee.is_active, employee.deactivated_at = True, None
    employee.save(update_fields=["is_active", "deactivated_at"])
    employee.user.is_active = True
    employee.user.save(update_fields=["is_active"])
    audit.record(
        "employee.reactivated", company=by.company_id, actor=by, obj=employee, before=before,
        after=employee_state(employee),
    )  # fmt: skip
    return employee


def password_link(employee: Employee, *, base_url: str) -> str:
    uid = urlsafe_base64_encode(force_bytes(employee.user.pk))
    token = default_token_generator.make_token(employee.user)
    return base_url.rstrip("/") + reverse("web:set-password", args=[uid, token])


def send_password_link(employee: Employee, *, by: Employee, base_url: str) -> str:
    """E-mail the employee a link to choose their password (it expires: PASSWORD_RESET_TIMEOUT)."""
    with transaction.atomic(durable=True):
        _lock_company(by.company_id)
        employee = _manageable(by, employee)
        if not employee.is_active:
            raise ActionError(_("That employee is deactivated."), code="inactive")
        audit.record("employee.password_link_sent", company=by.company_id, actor=by, obj=employee)
    link = password_link(employee, base_url=base_url)
    company = employee.company.name
    send_mail(
        subject=_("Your Smartchat account at %(company)s") % {"company": company},
        message=_(
            "Hello %(name)s,\n\n%(admin)s has invited you to the %(company)s inbox on Smartchat.\n"
            "Choose your password here (the link works once and expires in %(days)s days):\n\n%(link)s\n\n"
            "Your sign-in e-mail is %(email)s."
        )
        % {
            "name": employee.display_name,
            "admin": by.display_name,
            "company": company,
            "days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
            "link": link,
            "email": employee.user.email,
        },
        from_email=None,
        recipient_list=[employee.user.email],
    )
    return link


# --- Teams ----------------------------------------------------------------------------------------------------


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


# --- Company settings --------------------------------------------------------------------------------------

LOGO_MAX_BYTES = 512 * 1024
LOGO_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


def company_state(company: Company) -> dict[str, Any]:
    return {
        "name": company.name,
        "description": company.description,
        "timezone": company.timezone,
        "working_hours": company.working_hours,
        "require_2fa_for_admins": company.require_2fa_for_admins,
        "logo": company.logo_updated_at.isoformat() if company.logo_content_type else "",
    }


def _clock(value: str) -> time:
    """ "9:00" or "09:00" (24-hour clock) as a time."""
    hours, minutes = str(value).strip().split(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(value)
    return time(int(hours), int(minutes))


def clean_working_hours(hours: dict[str, Any]) -> dict[str, list[str]]:
    """{"0": ["09:00", "18:00"], ...}: weekday (Monday = 0) to opening and closing time."""
    if not isinstance(hours, dict):
        raise ActionError(_("Working hours must map weekdays to times."), code="bad_hours", field="working_hours")
    clean: dict[str, list[str]] = {}
    for day, span in hours.items():
        if str(day) not in {str(d) for d in WEEKDAYS}:
            raise ActionError(_("Unknown weekday: %(day)s.") % {"day": day}, code="bad_hours", field="working_hours")
        try:
            start, end = (_clock(value) for value in span)
        except (TypeError, ValueError):
            raise ActionError(
                _("Working hours need a start and an end time like 09:00."), code="bad_hours", field="working_hours"
            ) from None
        if start >= end:
            raise ActionError(
                _("Each day's working hours must end after they start."), code="bad_hours", field="working_hours"
            )
        clean[str(day)] = [start.strftime("%H:%M"), end.strftime("%H:%M")]
    return dict(sorted(clean.items()))


@transaction.atomic(durable=True)
def update_company(
    company: Company,
    *,
    by: Employee,
    name: str = _UNSET,
    description: str = _UNSET,
    timezone_name: str = _UNSET,
    working_hours: dict[str, Any] = _UNSET,
    require_2fa_for_admins: bool = _UNSET,
) -> Company:
    access.require(by, Perm.MANAGE_COMPANY)
    if company.pk != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    company = _lock_company(company.pk)
    before = company_state(company)
    if name is not _UNSET:
        company.name = _clean_name(name, limit=200)
    if description is not _UNSET:
        company.description = (description or "").strip()[:2000]
    if timezone_name is not _UNSET:
        try:
            validate_timezone(timezone_name)
        except Exception:
            raise ActionError(
                _("%(tz)s is not a known time zone.") % {"tz": timezone_name}, code="bad_timezone", field="timezone"
            ) from None
        company.timezone = timezone_name
    if working_hours is not _UNSET:
        company.working_hours = clean_working_hours(working_hours)
    if require_2fa_for_admins is not _UNSET:
        company.require_2fa_for_admins = bool(require_2fa_for_admins)
    company.save()
    audit.record("company.updated", company=company, actor=by, obj=company, before=before, after=company_state(company))
    return company


@transaction.atomic(durable=True)
def set_company_logo(company: Company, *, by: Employee, data: bytes | None) -> Company:
    """Replace (or with ``None`` remove) the logo: a PNG, JPEG, GIF or WebP image up to 512 KB."""
    access.require(by, Perm.MANAGE_COMPANY)
    if company.pk != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    content_type = ""
    if data is not None:
        content_type = _image_type(data)
    company = _lock_company(company.pk)
    before = company_state(company)
    now = timezone.now()
    CompanyLogo.objects.update_or_create(
        company=company, defaults={"data": data or b"", "content_type": content_type, "updated_at": now}
    )
    company.logo_content_type, company.logo_updated_at = content_type, now
    company.save(update_fields=["logo_content_type", "logo_updated_at"])
    audit.record(
        "company.logo_changed", company=company, actor=by, obj=company, before=before, after=company_state(company)
    )
    return company


def _image_type(data: bytes) -> str:
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    if len(data) > LOGO_MAX_BYTES:
        raise ActionError(_("The logo can be at most 512 KB."), code="too_large", field="logo")
    try:
        with Image.open(BytesIO(data)) as image:
            image.verify()
            kind = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        kind = None
    if kind not in LOGO_TYPES:
        raise ActionError(_("The logo must be a PNG, JPEG, GIF or WebP image."), code="bad_image", field="logo")
    return LOGO_TYPES[kind]


# --- Channels -------------------------------------------------------------------------------------------------


def channel_state(channel: Channel) -> dict[str, Any]:
    return {"name": channel.name, "team": channel.team.name if channel.team_id else None, **channel.settings}


@transaction.atomic(durable=True)
def update_channel(
    channel: Channel, *, by: Employee, name: str = _UNSET, team: Team | None = _UNSET, settings: dict = _UNSET
) -> Channel:
    """Rename a channel, route it to a team, or change its kind's settings (already validated)."""
    access.require(by, Perm.MANAGE_CHANNELS)
    _same_company(by, channel)
    _lock_company(by.company_id)
    channel = Channel.objects.select_for_update(of=("self",)).select_related("team").get(pk=channel.pk)
    before = channel_state(channel)
    if name is not _UNSET:
        channel.name = _clean_name(name)
    if team is not _UNSET:
        _same_company(by, team)
        channel.team = team
    if settings is not _UNSET:
        channel.settings = {**channel.settings, **settings}
    channel.save(update_fields=["name", "team", "settings"])
    audit.record(
        "channel.updated", company=by.company_id, actor=by, obj=channel, before=before, after=channel_state(channel)
    )
    return channel


# --- Presence -----------------------------------------------------------------------------------------------------
# Not audited: every change is a PresenceChange row (the statistics read them), and colleagues'
# inboxes hear of it after commit. Going online takes the routing lock first (before the
# employee's row, the order routing keeps) and hands out the queue: there is someone new.


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


# --- API tokens --------------------------------------------------------------------------------------------------

TOKEN_PREFIX = "sc"


def _hash_secret(secret: str) -> str:
    # The secret is 32 random bytes: a plain SHA-256 is enough (no dictionary to guess from).
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic(durable=True)
def create_api_token(*, by: Employee, name: str) -> tuple[ApiToken, str]:
    """A new personal API key. The full key is returned once and never stored."""
    if not by.is_active:
        raise ActionError(_("That employee is deactivated."), code="inactive")
    name = _clean_name(name)
    if ApiToken.objects.filter(employee=by, revoked_at__isnull=True).count() >= 20:
        raise ActionError(_("You have 20 active API tokens; revoke one first."), code="too_many")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = ApiToken.objects.create(employee=by, name=name, prefix=prefix, secret_hash=_hash_secret(secret))
    audit.record("api_token.created", company=by.company_id, actor=by, obj=token, after={"name": name})
    return token, f"{TOKEN_PREFIX}_{prefix}_{secret}"


@transaction.atomic(durable=True)
def revoke_api_token(token: ApiToken, *, by: Employee) -> ApiToken:
    token = ApiToken.objects.select_for_update().select_related("employee").get(pk=token.pk)
    if token.employee_id != by.pk:
        # Someone else's token: only who manages its owner may revoke it.
        _manageable(by, token.employee)
    if token.revoked_at:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record("api_token.revoked", company=by.company_id, actor=by, obj=token, before={"name": token.name})
    return token


def employee_for_api_key(key: str) -> tuple[Employee, ApiToken] | None:
    """The active employee a key belongs to, or None. Constant-time on the secret."""
    parts = (key or "").split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = (
        ApiToken.objects.select_related("employee__role", "employee__user", "employee__company")
        .filter(prefix=parts[1], revoked_at__isnull=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.secret_hash, _hash_secret(parts[2])):
        return None
    if not token.employee.is_active or not token.employee.user.is_active:
        return None
    now = timezone.now()
    # Remember use, but write at most once a minute per token.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.employee, token


# --- Two-factor sign-in ------------------------------------------------------------------------------------------

TOTP_ISSUER = "Smartchat"


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(employee: Employee, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=employee.user.email, issuer_name=TOTP_ISSUER)


def _code_step(secret: str, code: str, *, after_step: int) -> int | None:
    """The time step a 6-digit code is valid for (±1 step of clock drift), if newer than ``after_step``."""
    code = "".join((code or "").split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now_step = totp.timecode(timezone.now())
    for step in (now_step - 1, now_step, now_step + 1):
        if step > after_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


@transaction.atomic(durable=True)
def enable_totp(employee: Employee, *, secret: str, code: str) -> Employee:
    """Turn two-factor sign-in on, once the employee proves their app shows the right code."""
    employee = Employee.objects.select_for_update().get(pk=employee.pk)
    step = _code_step(secret, code, after_step=0)
    if step is None:
        raise ActionError(_("That code is not right. Check the time on your phone and try again."), code="bad_code")
    employee.totp_secret, employee.totp_confirmed_at, employee.totp_last_step = secret, timezone.now(), step
    employee.save(update_fields=["totp_secret", "totp_confirmed_at", "totp_last_step"])
    audit.record("employee.2fa_enabled", company=employee.company_id, actor=employee, obj=employee)
    return employee


@transaction.atomic(durable=True)
def disable_totp(employee: Employee, *, by: Employee, code: str | None = None) -> Employee:
    """Turn it off: the employee with a current code, or an admin who manages them (lost phone)."""
    employee = Employee.objects.select_for_update().get(pk=employee.pk)
    if by.pk == employee.pk:
        if access.needs_2fa(employee):
            raise ActionError(_("Your company requires two-factor sign-in for your role."), code="required")
        if not verify_totp(employee, code or "", _locked=True):
            raise ActionError(_("That code is not right."), code="bad_code")
    else:
        _manageable(by, employee)
    employee.totp_secret, employee.totp_confirmed_at, employee.totp_last_step = "", None, 0
    employee.save(update_fields=["totp_secret", "totp_confirmed_at", "totp_last_step"])
    audit.record("employee.2fa_disabled", company=employee.company_id, actor=by, obj=employee)
    return employee


def verify_totp(employee: Employee, code: str, *, _locked: bool = False) -> bool:
    """Check a sign-in code; a code that was already used (same time step) fails."""
    if not employee.has_2fa:
        return False
    with transaction.atomic():
        row = employee if _locked else Employee.objects.select_for_update().get(pk=employee.pk)
        step = _code_step(row.totp_secret, code, after_step=row.totp_last_step)
        if step is None:
            return False
        Employee.objects.filter(pk=employee.pk).update(totp_last_step=step)
        employee.totp_last_step = step
        return True


# --- Sign-in -------------------------------------------------------------------------------------------------------


def record_sign_in(*, employee: Employee | None, username: str, succeeded: bool, reason: str = "") -> None:
    """Every sign-in and every failed attempt goes to the audit log of the company it names."""
    audit.record(
        "signin.succeeded" if succeeded else "signin.failed",
        company=employee.company_id if employee else None,
        actor=employee,
        actor_name=employee.display_name if employee else username[:200],
        object_type="employee",
        object_repr=username[:200],
        after={"reason": reason} if reason else {},
    )
