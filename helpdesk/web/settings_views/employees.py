"""Settings → Employees: the list, adding, the account page, links, deactivation."""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages as flash
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import Employee, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.errors import ActionError
from helpdesk.events.models import AuditEntry

from ..decorators import employee_required
from ..settings_forms import (
    EmployeeForm,
    show_action_error,
)
from ._common import _base_url, _page, _posted, _press

log = logging.getLogger(__name__)

# How an employee's account history names each change (other actions show their code).
HISTORY_LABELS = {
    "employee.added": gettext_lazy("Added"),
    "employee.updated": gettext_lazy("Changed"),
    "employee.deactivated": gettext_lazy("Deactivated"),
    "employee.reactivated": gettext_lazy("Reactivated"),
    "employee.password_link_sent": gettext_lazy("Set-password link sent"),
    "employee.2fa_enabled": gettext_lazy("Two-factor sign-in turned on"),
    "employee.2fa_disabled": gettext_lazy("Two-factor sign-in turned off"),
}
HISTORY_FIELDS = {
    "name": gettext_lazy("name"),
    "email": gettext_lazy("e-mail"),
    "role": gettext_lazy("role"),
    "teams": gettext_lazy("teams"),
    "capacity": gettext_lazy("capacity"),
    "active": gettext_lazy("status"),
}
HISTORY_LIMIT = 10
EMPLOYEE_FILTERS = {"active": True, "deactivated": False}


@employee_required(Perm.MANAGE_EMPLOYEES)
def employee_list(request: HttpRequest) -> HttpResponse:
    """The company's employees, active or deactivated."""
    me = request.employee
    status = request.GET.get("status", "active")
    if status not in EMPLOYEE_FILTERS:
        raise Http404
    everyone = access.company_employees(me)
    counts = everyone.aggregate(
        active=Count("pk", filter=Q(is_active=True)), deactivated=Count("pk", filter=Q(is_active=False))
    )
    employees = (
        everyone.filter(is_active=EMPLOYEE_FILTERS[status])
        .prefetch_related(Prefetch("teams", queryset=Team.objects.order_by("name")))
        .order_by("display_name", "pk")
    )
    return _page(
        request,
        "web/settings/employee_list.html",
        "web:employees",
        {"employees": employees, "status": status, "counts": counts},
    )


@employee_required(Perm.MANAGE_EMPLOYEES)
def employee_add(request: HttpRequest) -> HttpResponse:
    """Add an employee and e-mail them their set-password link."""
    me = request.employee
    form = EmployeeForm(_posted(request), viewer=me)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            employee = admin_actions.add_employee(
                by=me,
                email=data["email"],
                name=data["name"],
                role=data["role"],
                teams=list(data["teams"]),
                capacity=data["capacity"],
            )
        except ActionError as error:
            show_action_error(form, error)
        else:
            _invite(request, employee)
            return redirect("web:employee", employee_id=employee.pk)
    return _page(request, "web/settings/employee_add.html", "web:employees", {"form": form})


def _invite(request: HttpRequest, employee: Employee) -> None:
    """Send the new employee their set-password link; they exist either way."""
    names = {"name": employee.display_name, "email": employee.user.email}
    try:
        admin_actions.send_password_link(employee, by=request.employee, base_url=_base_url(request))
    except OSError:  # SMTP errors included: the account is there, the e-mail can be sent again
        log.exception("could not send the set-password link to employee %s", employee.pk)
        flash.warning(
            request,
            _(
                "%(name)s is added, but the e-mail to %(email)s could not be sent. "
                "Try “Send set-password link” again later."
            )
            % names,
        )
    else:
        flash.success(request, _("%(name)s is added. We e-mailed %(email)s a link to choose a password.") % names)


def _history(employee: Employee) -> list[dict[str, Any]]:
    entries = AuditEntry.objects.filter(
        company_id=employee.company_id, object_type="employee", object_id=str(employee.pk)
    ).order_by("-id")[:HISTORY_LIMIT]
    return [
        {
            "at": entry.created_at,
            "actor": entry.actor_name,
            "what": HISTORY_LABELS.get(entry.action, entry.action),
            # An edit says what it changed; the other entries say it in their name.
            "fields": [str(HISTORY_FIELDS.get(key, key)) for key in entry.after]
            if entry.action == "employee.updated"
            else [],
        }
        for entry in entries
    ]


@employee_required(Perm.MANAGE_EMPLOYEES)
def employee_detail(request: HttpRequest, employee_id: int) -> HttpResponse:
    """One employee: their facts, an edit form when the admin may manage them, their history."""
    me = request.employee
    employee = access.get_employee(me, employee_id)
    # Someone whose role has powers the admin lacks is shown, not offered for editing.
    can_edit = employee.pk == me.pk or access.outranks(me, employee.role)
    form = EmployeeForm(_posted(request), viewer=me, employee=employee) if can_edit else None
    if request.method == "POST":
        if form is None:
            access.require_outranks(me, employee.role)
        elif form.is_valid():
            data = form.cleaned_data
            try:
                admin_actions.update_employee(
                    employee,
                    by=me,
                    name=data["name"],
                    role=data["role"],
                    teams=list(data["teams"]),
                    capacity=data["capacity"],
                )
            except ActionError as error:
                show_action_error(form, error)
            else:
                flash.success(request, _("Saved."))
                return redirect("web:employee", employee_id=employee.pk)
    return _page(
        request,
        "web/settings/employee_detail.html",
        "web:employees",
        {
            "person": employee,
            "form": form,
            "can_edit": can_edit,
            "is_me": employee.pk == me.pk,
            "teams": employee.teams.order_by("name"),
            "history": _history(employee),
        },
    )


@employee_required(Perm.MANAGE_EMPLOYEES)
@require_POST
def employee_send_link(request: HttpRequest, employee_id: int) -> HttpResponse:
    """E-mail the employee a fresh set-password link."""
    employee = access.get_employee(request.employee, employee_id)
    try:
        admin_actions.send_password_link(employee, by=request.employee, base_url=_base_url(request))
    except ActionError as error:
        flash.error(request, error.message)
    except OSError:
        log.exception("could not send the set-password link to employee %s", employee.pk)
        flash.error(request, _("The e-mail could not be sent. Please try again later."))
    else:
        flash.success(request, _("We e-mailed %(email)s a link to choose a password.") % {"email": employee.user.email})
    return redirect("web:employee", employee_id=employee.pk)


@employee_required(Perm.MANAGE_EMPLOYEES)
@require_POST
def employee_deactivate(request: HttpRequest, employee_id: int) -> HttpResponse:
    """Deactivate an employee: no more sign-ins or assignments; their history stays."""
    employee = access.get_employee(request.employee, employee_id)
    try:
        done = admin_actions.deactivate_employee(employee, by=request.employee)
    except ActionError as error:
        flash.error(request, error.message)
    else:
        message = _("%(name)s is deactivated.") % {"name": employee.display_name}
        if released := len(getattr(done, "released_conversation_ids", ())):
            message += " " + ngettext(
                "Their open or snoozed conversation is back in its team’s queue.",
                "Their %(count)s open or snoozed conversations are back in their teams’ queues.",
                released,
            ) % {"count": released}
        flash.success(request, message)
    return redirect("web:employee", employee_id=employee.pk)


@employee_required(Perm.MANAGE_EMPLOYEES)
@require_POST
def employee_reset_2fa(request: HttpRequest, employee_id: int) -> HttpResponse:
    """Turn off someone's two-factor sign-in (a lost phone); the change is in the audit log."""
    employee = access.get_employee(request.employee, employee_id)
    _press(
        request,
        lambda: admin_actions.disable_totp(employee, by=request.employee),
        _("Two-factor sign-in is off for %(name)s.") % {"name": employee.display_name},
    )
    return redirect("web:employee", employee_id=employee.pk)


@employee_required(Perm.MANAGE_EMPLOYEES)
@require_POST
def employee_reactivate(request: HttpRequest, employee_id: int) -> HttpResponse:
    """Let a deactivated employee sign in again."""
    employee = access.get_employee(request.employee, employee_id)
    _press(
        request,
        lambda: admin_actions.reactivate_employee(employee, by=request.employee),
        _("%(name)s is active again.") % {"name": employee.display_name},
    )
    return redirect("web:employee", employee_id=employee.pk)


# --- Teams ----------------------------------------------------------------------------------------------------
