"""Employees: every colleague's public card for everyone; addresses and changes for managers.

Any active employee may list colleagues (name, role, teams, presence): they need them to
assign chats. The e-mail address and capacity are shown only to holders of
``manage_employees`` (null for everyone else), and only they may search by e-mail.
"""

from __future__ import annotations

import logging

import django_filters
from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import Employee, Presence, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.accounts.presence import shown_presence
from helpdesk.conversations import access

from .common import GatedListApi, me
from .filters import BoolFilter, IdFilter, StrictFilterSet
from .schema import errors
from .views import validated

TAGS = ["employees"]
MAX_IDS = 200

log = logging.getLogger(__name__)


class TeamRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class RoleRefOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="label", help_text=_("As shown: a built-in role's name is translated."))


class EmployeeOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="display_name")
    role = RoleRefOut()
    teams = TeamRefOut(many=True)
    presence = serializers.SerializerMethodField()
    active = serializers.BooleanField(source="is_active")
    email = serializers.EmailField(
        source="user.email", allow_null=True, help_text=_("Only for holders of manage_employees; null otherwise.")
    )
    capacity = serializers.IntegerField(
        allow_null=True,
        help_text=_("How many open chats automatic assignment gives them. Only for holders of manage_employees."),
    )

    @extend_schema_field(serializers.ChoiceField(choices=Presence.choices))
    def get_presence(self, employee: Employee) -> str:
        return shown_presence(employee)

    def to_representation(self, employee: Employee):
        data = super().to_representation(employee)
        if not me(self.context["request"]).can(Perm.MANAGE_EMPLOYEES):
            data["email"] = data["capacity"] = None
        return data


class EmployeeCreatedOut(EmployeeOut):
    invite_sent = serializers.BooleanField(help_text=_("Whether the set-password link was e-mailed."))


def employees(viewer: Employee) -> QuerySet[Employee]:
    """The company's employees with what their card shows, in one query plus one for teams."""
    return (
        access.company_employees(viewer)
        .prefetch_related(Prefetch("teams", queryset=Team.objects.order_by("name", "pk")))
        .order_by("display_name", "pk")
    )


def card(request, employee_id: int, **extra) -> dict:
    employee = get_object_or_404(employees(me(request)), pk=employee_id)  # the gate's rows: 404 if not ours
    return {**EmployeeOut(employee, context={"request": request}).data, **extra}


class EmployeeFilter(StrictFilterSet):
    role_id = IdFilter(field_name="role_id")
    team_id = IdFilter(field_name="teams")
    active = BoolFilter(field_name="is_active")
    search = django_filters.CharFilter(
        method="filter_search",
        max_length=100,
        help_text=_("Part of the name (or, for holders of manage_employees, of the e-mail address)."),
    )

    class Meta:
        model = Employee
        fields = ["role_id", "team_id", "active", "search"]

    def filter_search(self, queryset, name, value):
        match = Q(display_name__icontains=value)
        if me(self.request).can(Perm.MANAGE_EMPLOYEES):
            match |= Q(user__email__icontains=value)
        return queryset.filter(match)


class EmployeeListApi(GatedListApi):
    model = Employee
    serializer_class = EmployeeOut
    filterset_class = EmployeeFilter

    class Input(serializers.Serializer):
        email = serializers.EmailField(max_length=254)
        name = serializers.CharField(max_length=150)
        role_id = serializers.IntegerField()
        team_ids = serializers.ListField(child=serializers.IntegerField(), default=list, max_length=MAX_IDS)
        capacity = serializers.IntegerField(default=10, min_value=0, max_value=1000)
        send_invite = serializers.BooleanField(
            default=False, help_text=_("E-mail them a link to choose their password.")
        )

    def rows(self, employee):
        return employees(employee)

    @extend_schema(tags=TAGS, responses={200: EmployeeOut(many=True), **errors(400)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        request=Input,
        responses={201: EmployeeCreatedOut, **errors(400, 403, 404)},
        description=_("Add an employee (manage_employees). A role or team of another company answers 404."),
    )
    def post(self, request):
        by = me(request)
        access.require(by, Perm.MANAGE_EMPLOYEES)
        data = validated(self.Input, request.data)
        role = access.get_role(by, data["role_id"])
        teams = access.get_teams(by, data["team_ids"])
        employee = admin_actions.add_employee(
            by=by, email=data["email"], name=data["name"], role=role, teams=teams, capacity=data["capacity"]
        )
        invite_sent = False
        if data["send_invite"]:
            base_url = settings.PUBLIC_URL or request.build_absolute_uri("/")
            try:
                admin_actions.send_password_link(employee, by=by, base_url=base_url)
                invite_sent = True
            except OSError:  # SMTP errors included: the employee exists; the link can be sent again
                log.exception("could not send the set-password link to employee %s", employee.pk)
        return Response(card(request, employee.pk, invite_sent=invite_sent), status=status.HTTP_201_CREATED)


class EmployeeDetailApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=150, required=False)
        role_id = serializers.IntegerField(required=False)
        team_ids = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=MAX_IDS)
        capacity = serializers.IntegerField(required=False, min_value=0, max_value=1000)

    @extend_schema(tags=TAGS, responses={200: EmployeeOut, **errors(404)})
    def get(self, request, employee_id: int):
        return Response(card(request, employee_id))

    @extend_schema(
        tags=TAGS,
        request=Input,
        responses={200: EmployeeOut, **errors(400, 403, 404)},
        description=_("Change name, role, teams or capacity (manage_employees). team_ids replaces the teams."),
    )
    def patch(self, request, employee_id: int):
        by = me(request)
        access.require(by, Perm.MANAGE_EMPLOYEES)
        employee = access.get_employee(by, employee_id)
        data = validated(self.Input, request.data)
        changes = {key: data[key] for key in ("name", "capacity") if key in data}
        if "role_id" in data:
            changes["role"] = access.get_role(by, data["role_id"])
        if "team_ids" in data:
            changes["teams"] = access.get_teams(by, data["team_ids"])
        admin_actions.update_employee(employee, by=by, **changes)
        return Response(card(request, employee.pk))


def _employee_action_api(action_name: str, description: str):
    class EmployeeActionApi(APIView):
        @extend_schema(
            tags=TAGS,
            operation_id=f"employees_{action_name}",
            request=None,
            responses={200: EmployeeOut, **errors(400, 403, 404)},
            description=description,
        )
        def post(self, request, employee_id: int):
            by = me(request)
            access.require(by, Perm.MANAGE_EMPLOYEES)
            employee = access.get_employee(by, employee_id)
            getattr(admin_actions, f"{action_name}_employee")(employee, by=by)
            return Response(card(request, employee.pk))

    EmployeeActionApi.__name__ = EmployeeActionApi.__qualname__ = f"Employee{action_name.capitalize()}Api"
    return EmployeeActionApi


EmployeeDeactivateApi = _employee_action_api(
    "deactivate", _("They can no longer sign in, use their API tokens or be assigned; their history stays.")
)
EmployeeReactivateApi = _employee_action_api("reactivate", _("Let a deactivated employee back in."))
