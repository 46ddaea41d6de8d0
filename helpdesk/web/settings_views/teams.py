"""Settings → Teams: the list and a team's members."""

from __future__ import annotations

from django.contrib import messages as flash
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.errors import ActionError

from ..decorators import employee_required
from ..settings_forms import (
    TeamForm,
    TeamMembersForm,
    show_action_error,
)
from ._common import _page, _posted


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
