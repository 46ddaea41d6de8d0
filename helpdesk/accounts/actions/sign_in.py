"""Signing in: two-factor codes (enable, disable, verify) and the sign-in audit."""

from __future__ import annotations

import hmac

import pyotp
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.conversations import access
from helpdesk.errors import ActionError
from helpdesk.events import audit

from ..models import Employee
from .employees import _manageable

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
