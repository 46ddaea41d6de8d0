"""Roles: read by those who manage roles or employees (to pick one), changed by role managers only."""

from __future__ import annotations

import django_filters
from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import BuiltinRole, Employee, Role, Scope
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access

from .common import GatedListApi, me
from .filters import BoolFilter, StrictFilterSet
from .permissions import holds_any
from .schema import errors
from .views import validated

TAGS = ["roles"]
CanReadRoles = holds_any(Perm.MANAGE_ROLES, Perm.MANAGE_EMPLOYEES)


class RoleOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    label = serializers.CharField(help_text=_("The name to show: a built-in role's name is translated."))
    builtin = serializers.SerializerMethodField()
    scope = serializers.ChoiceField(choices=Scope.choices, help_text=_("Which conversations its holders see."))
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=Perm.choices))
    archived = serializers.BooleanField()
    archived_at = serializers.DateTimeField(allow_null=True)
    holders = serializers.IntegerField(help_text=_("Active employees who hold this role."))
    created_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ChoiceField(choices=BuiltinRole.choices, allow_null=True))
    def get_builtin(self, role: Role) -> str | None:
        return role.builtin or None


def roles(viewer: Employee) -> QuerySet[Role]:
    holders = Count("employees", filter=Q(employees__is_active=True))
    return access.company_roles(viewer).annotate(holders=holders).order_by("name", "pk")


def role_data(request, role_id: int) -> dict:
    return RoleOut(get_object_or_404(roles(me(request)), pk=role_id)).data


class RoleFilter(StrictFilterSet):
    archived = BoolFilter(field_name="archived_at", lookup_expr="isnull", coerce=lambda value: value == "false")
    scope = django_filters.ChoiceFilter(choices=Scope.choices)
    search = django_filters.CharFilter(field_name="name", lookup_expr="icontains", max_length=100)

    class Meta:
        model = Role
        fields = ["archived", "scope", "search"]


class RoleListApi(GatedListApi):
    model = Role
    serializer_class = RoleOut
    filterset_class = RoleFilter
    permission_classes = [CanReadRoles]

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        permissions = serializers.ListField(child=serializers.ChoiceField(choices=Perm.choices), max_length=100)
        scope = serializers.ChoiceField(choices=Scope.choices)

    def rows(self, employee):
        return roles(employee)

    @extend_schema(tags=TAGS, responses={200: RoleOut(many=True), **errors(400, 403)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(tags=TAGS, request=Input, responses={201: RoleOut, **errors(400, 403)})
    def post(self, request):
        by = me(request)
        access.require(by, Perm.MANAGE_ROLES)
        data = validated(self.Input, request.data)
        role = admin_actions.create_role(by=by, **data)
        return Response(role_data(request, role.pk), status=status.HTTP_201_CREATED)


class RoleDetailApi(APIView):
    permission_classes = [CanReadRoles]

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        permissions = serializers.ListField(
            child=serializers.ChoiceField(choices=Perm.choices), max_length=100, required=False
        )
        scope = serializers.ChoiceField(choices=Scope.choices, required=False)

    @extend_schema(tags=TAGS, responses={200: RoleOut, **errors(403, 404)})
    def get(self, request, role_id: int):
        return Response(role_data(request, role_id))

    @extend_schema(
        tags=TAGS,
        request=Input,
        responses={200: RoleOut, **errors(400, 403, 404)},
        description=_("Rename a role or change its permissions or scope. Never your own role, nor an archived one."),
    )
    def patch(self, request, role_id: int):
        by = me(request)
        access.require(by, Perm.MANAGE_ROLES)
        role = access.get_role(by, role_id)
        data = validated(self.Input, request.data)
        admin_actions.update_role(role, by=by, **data)
        return Response(role_data(request, role.pk))


def _role_action_api(action_name: str, description: str):
    class RoleActionApi(APIView):
        permission_classes = [CanReadRoles]

        @extend_schema(
            tags=TAGS,
            operation_id=f"roles_{action_name}",
            request=None,
            responses={200: RoleOut, **errors(400, 403, 404)},
            description=description,
        )
        def post(self, request, role_id: int):
            by = me(request)
            access.require(by, Perm.MANAGE_ROLES)
            role = access.get_role(by, role_id)
            getattr(admin_actions, f"{action_name}_role")(role, by=by)
            return Response(role_data(request, role.pk))

    RoleActionApi.__name__ = RoleActionApi.__qualname__ = f"Role{action_name.capitalize()}Api"
    return RoleActionApi


RoleArchiveApi = _role_action_api(
    "archive", _("Retire a role nobody active holds: it stays for history, but nobody new gets it.")
)
RoleUnarchiveApi = _role_action_api("unarchive", _("Make an archived role available again."))
