"""Teams: every employee may read them (to route chats); holders of manage_employees change them."""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import AssignmentMethod, Employee, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access

from .common import GatedListApi, me
from .filters import IdFilter, StrictFilterSet
from .schema import errors
from .views import validated

TAGS = ["teams"]
MAX_MEMBERS = 500


class MemberOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="display_name")
    active = serializers.BooleanField(source="is_active")


class TeamOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    members = MemberOut(many=True)
    assignment_method = serializers.ChoiceField(
        choices=AssignmentMethod.choices, help_text=_("How the team's new conversations are handed out.")
    )
    max_open_per_agent = serializers.IntegerField(
        allow_null=True, help_text=_("Open conversations of this team per agent at most; null: only capacity counts.")
    )


def teams(viewer: Employee) -> QuerySet[Team]:
    members = Employee.objects.order_by("display_name", "pk")
    return access.company_teams(viewer).prefetch_related(Prefetch("members", queryset=members)).order_by("name", "pk")


def team_data(request, team_id: int) -> dict:
    return TeamOut(get_object_or_404(teams(me(request)), pk=team_id)).data


class TeamFilter(StrictFilterSet):
    member_id = IdFilter(field_name="members", help_text=_("Teams this employee is a member of."))
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=100)

    class Meta:
        model = Team
        fields = ["member_id", "search"]


class TeamListApi(GatedListApi):
    model = Team
    serializer_class = TeamOut
    filterset_class = TeamFilter

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        member_ids = serializers.ListField(child=serializers.IntegerField(), default=list, max_length=MAX_MEMBERS)

    def rows(self, employee):
        return teams(employee)

    @extend_schema(tags=TAGS, responses={200: TeamOut(many=True), **errors(400)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=TAGS, request=Input, responses={201: TeamOut, **errors(400, 403, 404)})
    def post(self, request):
        by = me(request)
        access.require(by, Perm.MANAGE_EMPLOYEES)
        data = validated(self.Input, request.data)
        members = access.get_employees(by, data["member_ids"])
        team = admin_actions.create_team(by=by, name=data["name"], members=members)
        return Response(team_data(request, team.pk), status=status.HTTP_201_CREATED)


class TeamDetailApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        member_ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=MAX_MEMBERS)
        assignment_method = serializers.ChoiceField(choices=AssignmentMethod.choices, required=False)
        # The range is the action's rule (its own words and code: bad_limit).
        max_open_per_agent = serializers.IntegerField(required=False, allow_null=True)

    @extend_schema(tags=TAGS, responses={200: TeamOut, **errors(404)})
    def get(self, request, team_id: int):
        return Response(team_data(request, team_id))

    @extend_schema(
        tags=TAGS,
        request=Input,
        responses={200: TeamOut, **errors(400, 403, 404)},
        description=_(
            "Rename a team, set its members (member_ids replaces them), or how its conversations are "
            "handed out: assignment_method balanced, round_robin or manual, and max_open_per_agent."
        ),
    )
    def patch(self, request, team_id: int):
        by = me(request)
        access.require(by, Perm.MANAGE_EMPLOYEES)
        team = access.get_team(by, team_id)
        data = validated(self.Input, request.data)
        changes = {key: data[key] for key in ("name", "assignment_method", "max_open_per_agent") if key in data}
        if "member_ids" in data:
            changes["members"] = access.get_employees(by, data["member_ids"])
        admin_actions.update_team(team, by=by, **changes)
        return Response(team_data(request, team.pk))
