from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from helpdesk.conversations import access


def employee_required(perm: str | None = None):
    """Signed in as an active employee (else login / 403), optionally holding ``perm``."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            employee = getattr(request.user, "employee", None)
            if employee is None or not employee.is_active:
                raise PermissionDenied(_("This account is not an employee of any company."))
            if perm:
                access.require(employee, perm)
            request.employee = employee
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
