"""Employees: add, edit, deactivate and reactivate them; their set-password link."""

from __future__ import annotations

from typing import Any

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

from helpdesk.conversations import access, routing
from helpdesk.conversations import actions as conversation_actions
from helpdesk.errors import ActionError
from helpdesk.events import audit

from ..models import Employee, Role, Team, username_for
from ..permissions import Perm
from ._common import (
    _UNSET,
    _access_changed,
    _clean_name,
    _ensure_roles_can_still_be_managed,
    _lock_company,
    _same_company,
)

EMAIL_LENGTH = 254  # the e-mail column of django.contrib.auth's user (RFC 5321's limit)


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
