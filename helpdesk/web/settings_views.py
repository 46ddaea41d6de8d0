"""The admins' settings pages: company, employees, teams and roles.

Reads start from ``access`` (another company's id is a 404), every change goes through
``helpdesk.accounts.actions`` (which checks the rules and writes the audit log), and every
form answers a successful POST with a redirect and a flash message.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages as flash
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import CompanyLogo, Employee, Role, Scope, Team
from helpdesk.accounts.permissions import PERM_GROUPS, Perm
from helpdesk.conversations import access
from helpdesk.errors import ActionError
from helpdesk.events.models import AuditEntry

from .decorators import employee_required
from .settings_forms import (
    CompanyForm,
    EmployeeForm,
    LogoForm,
    RoleForm,
    TeamForm,
    TeamMembersForm,
    show_action_error,
)

log = logging.getLogger(__name__)

SCOPE_HELP = {
    Scope.ALL: gettext_lazy("Sees the whole inbox: every team's queue and every assigned conversation."),
    Scope.TEAMS: gettext_lazy("Sees the queues of the teams they belong to, and whatever is assigned to them."),
    Scope.ASSIGNED: gettext_lazy("Sees a conversation only once it is assigned to them."),
}
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


def _page(request: HttpRequest, template: str, section: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {**context, "settings_page": True, "section": section})


def _posted(request: HttpRequest) -> Any:
    # An empty POST is still a POST: bind it, so the form says what is missing.
    return request.POST if request.method == "POST" else None


def _base_url(request: HttpRequest) -> str:
    return settings.PUBLIC_URL or request.build_absolute_uri("/")


def _press(request: HttpRequest, action: Callable[[], Any], done: str) -> None:
    """Run a button's action: flash ``done``, or the action's refusal (nothing changed)."""
    try:
        action()
    except ActionError as error:
        flash.error(request, error.message)
    else:
        flash.success(request, done)


# --- Company -----------------------------------------------------------------------------------------------


def _company_page(request: HttpRequest, form: CompanyForm, logo_form: LogoForm) -> HttpResponse:
    company = request.employee.company
    return _page(
        request,
        "web/settings/company.html",
        "web:settings-company",
        {"company": company, "form": form, "logo_form": logo_form},
    )


@employee_required(Perm.MANAGE_COMPANY)
def company_settings(request: HttpRequest) -> HttpResponse:
    """Name, description, time zone, working hours and the 2FA rule of the admin's company."""
    me = request.employee
    form = CompanyForm(_posted(request), company=me.company)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            admin_actions.update_company(
                me.company,
                by=me,
                name=data["name"],
                description=data["description"],
                timezone_name=data["timezone"],
                working_hours=form.working_hours(),
                require_2fa_for_admins=data["require_2fa_for_admins"],
            )
        except ActionError as error:
            show_action_error(form, error)
        else:
            flash.success(request, _("Saved."))
            return redirect("web:settings-company")
    return _company_page(request, form, LogoForm())


@employee_required(Perm.MANAGE_COMPANY)
@require_POST
def company_logo_upload(request: HttpRequest) -> HttpResponse:
    """Replace the company logo with an uploaded image (the action checks it is one)."""
    me = request.employee
    logo_form = LogoForm(request.POST, request.FILES)
    if logo_form.is_valid():
        # One byte past the limit is enough for the action to refuse a big file: never read it all.
        data = logo_form.cleaned_data["logo"].read(admin_actions.LOGO_MAX_BYTES + 1)
        try:
            admin_actions.set_company_logo(me.company, by=me, data=data)
        except ActionError as error:
            show_action_error(logo_form, error)
        else:
            flash.success(request, _("The new logo is saved."))
            return redirect("web:settings-company")
    return _company_page(request, CompanyForm(company=me.company), logo_form)


@employee_required(Perm.MANAGE_COMPANY)
@require_POST
def company_logo_remove(request: HttpRequest) -> HttpResponse:
    """Remove the company logo."""
    me = request.employee
    _press(request, lambda: admin_actions.set_company_logo(me.company, by=me, data=None), _("The logo is removed."))
    return redirect("web:settings-company")


@employee_required()
def company_logo(request: HttpRequest) -> HttpResponse:
    """The logo of the signed-in employee's own company (there is no way to name another)."""
    logo = CompanyLogo.objects.filter(company_id=request.employee.company_id).exclude(content_type="").first()
    if logo is None:
        raise Http404
    response = HttpResponse(bytes(logo.data), content_type=logo.content_type)
    # The type was checked at upload; nosniff keeps a browser from guessing another one.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'"
    # Pages link it with ?v=<upload time>, so a new logo is a new address; private: it needs a session.
    response["Cache-Control"] = "private, max-age=86400"
    return response


# --- Employees ------------------------------------------------------------------------------------------------


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


@employee_required(Perm.MANAGE_EMPLOYEES)
def team_list(request: HttpRequest) -> HttpResponse:
    """The company's teams with their active member counts, and a form for a new one."""
    me = request.employee
    form = TeamForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            team = admin_actions.create_team(by=me, name=form.cleaned_data["name"])
        except ActionError as error:
            show_action_error(form, error)
        else:
            flash.success(request, _("Team %(name)s is created. Now choose its members.") % {"name": team.name})
            return redirect("web:team", team_id=team.pk)
    teams = (
        access.company_teams(me)
        .annotate(member_count=Count("members", filter=Q(members__is_active=True)))
        .order_by("name")
    )
    return _page(request, "web/settings/team_list.html", "web:teams", {"teams": teams, "form": form})


@employee_required(Perm.MANAGE_EMPLOYEES)
def team_detail(request: HttpRequest, team_id: int) -> HttpResponse:
    """Rename a team, choose its members among the active employees and how its chats are handed out."""
    me = request.employee
    team = access.get_team(me, team_id)
    members = list(team.members.order_by("display_name"))
    initial = {
        "name": team.name,
        "members": [m for m in members if m.is_active],
        "assignment_method": team.assignment_method,
        "max_open_per_agent": team.max_open_per_agent,
    }
    form = TeamMembersForm(_posted(request), viewer=me, initial=initial)
    if request.method == "POST" and form.is_valid():
        # Deactivated members are not offered as boxes; they stay in the team as they were.
        keep = [m for m in members if not m.is_active]
        data = form.cleaned_data
        try:
            admin_actions.update_team(
                team,
                by=me,
                name=data["name"],
                members=[*data["members"], *keep],
                assignment_method=data["assignment_method"] or team.assignment_method,
                max_open_per_agent=data["max_open_per_agent"],
            )
        except ActionError as error:
            show_action_error(form, error)
        else:
            flash.success(request, _("Saved."))
            return redirect("web:team", team_id=team.pk)
    return _page(
        request,
        "web/settings/team_detail.html",
        "web:teams",
        {"team": team, "form": form, "inactive_members": [m for m in members if not m.is_active]},
    )


# --- Roles ----------------------------------------------------------------------------------------------------


def _permission_groups(selected: set[str]) -> list[dict[str, Any]]:
    return [
        {
            "label": label,
            "perms": [{"value": perm.value, "label": perm.label, "checked": perm.value in selected} for perm in perms],
        }
        for label, perms in PERM_GROUPS
    ]


def _scopes(selected: str) -> list[dict[str, Any]]:
    return [
        {"value": value, "label": label, "help": SCOPE_HELP[value], "checked": value == selected}
        for value, label in Scope.choices
    ]


def _role_editor(form: RoleForm, role: Role | None) -> dict[str, Any]:
    """What the editor ticks: the posted values after a refused save, else the role's own."""
    if form.is_bound:
        selected, scope = set(form.data.getlist("permissions")), form.data.get("scope", "")
    elif role is not None:
        selected, scope = set(role.permissions), role.scope
    else:
        selected, scope = set(), Scope.TEAMS
    return {"form": form, "permission_groups": _permission_groups(selected), "scopes": _scopes(scope)}


@employee_required(Perm.MANAGE_ROLES)
def role_list(request: HttpRequest) -> HttpResponse:
    """The company's roles, archived ones apart."""
    roles = list(
        access.company_roles(request.employee)
        .annotate(holder_count=Count("employees", filter=Q(employees__is_active=True)))
        .order_by("name")
    )
    return _page(
        request,
        "web/settings/role_list.html",
        "web:roles",
        {
            "roles": [role for role in roles if not role.archived],
            "archived_roles": [role for role in roles if role.archived],
            "my_role_id": request.employee.role_id,
        },
    )


@employee_required(Perm.MANAGE_ROLES)
def role_add(request: HttpRequest) -> HttpResponse:
    """A new role: its name, conversation access and permissions."""
    form = RoleForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            role = admin_actions.create_role(
                by=request.employee, name=data["name"], permissions=data["permissions"], scope=data["scope"]
            )
        except ActionError as error:
            show_action_error(form, error)
        else:
            flash.success(request, _("Role %(name)s is created.") % {"name": role.label})
            return redirect("web:role", role_id=role.pk)
    return _page(request, "web/settings/role_form.html", "web:roles", {"role": None, **_role_editor(form, None)})


@employee_required(Perm.MANAGE_ROLES)
def role_detail(request: HttpRequest, role_id: int) -> HttpResponse:
    """The role editor: read-only for the editor's own role and for archived roles."""
    me = request.employee
    role = access.get_role(me, role_id)
    form = RoleForm(_posted(request), initial={"name": role.name})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            # The action refuses the editor's own role and an archived one with its own words.
            admin_actions.update_role(
                role, by=me, name=data["name"], permissions=data["permissions"], scope=data["scope"]
            )
        except ActionError as error:
            show_action_error(form, error)
        else:
            flash.success(request, _("Saved."))
            return redirect("web:role", role_id=role.pk)
    holders = role.employees.select_related("user").order_by("-is_active", "display_name")
    return _page(
        request,
        "web/settings/role_form.html",
        "web:roles",
        {
            "role": role,
            "own_role": role.pk == me.role_id,
            "holders": holders,
            "link_holders": me.can(Perm.MANAGE_EMPLOYEES),
            **_role_editor(form, role),
        },
    )


@employee_required(Perm.MANAGE_ROLES)
@require_POST
def role_archive(request: HttpRequest, role_id: int) -> HttpResponse:
    """Archive a role nobody active holds (never a built-in one)."""
    role = access.get_role(request.employee, role_id)
    _press(
        request,
        lambda: admin_actions.archive_role(role, by=request.employee),
        _("Role %(name)s is archived.") % {"name": role.label},
    )
    return redirect("web:role", role_id=role.pk)


@employee_required(Perm.MANAGE_ROLES)
@require_POST
def role_unarchive(request: HttpRequest, role_id: int) -> HttpResponse:
    """Make an archived role available again."""
    role = access.get_role(request.employee, role_id)
    _press(
        request,
        lambda: admin_actions.unarchive_role(role, by=request.employee),
        _("Role %(name)s can be given again.") % {"name": role.label},
    )
    return redirect("web:role", role_id=role.pk)
