"""Settings → Roles: the editor of permissions and scopes, archive and unarchive."""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import Role, Scope
from helpdesk.accounts.permissions import PERM_GROUPS, Perm
from helpdesk.conversations import access
from helpdesk.errors import ActionError

from ..decorators import employee_required
from ..settings_forms import (
    RoleForm,
    show_action_error,
)
from ._common import _page, _posted, _press

SCOPE_HELP = {
    Scope.ALL: gettext_lazy("Sees the whole inbox: every team's queue and every assigned conversation."),
    Scope.TEAMS: gettext_lazy("Sees the queues of the teams they belong to, and whatever is assigned to them."),
    Scope.ASSIGNED: gettext_lazy("Sees a conversation only once it is assigned to them."),
}


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
