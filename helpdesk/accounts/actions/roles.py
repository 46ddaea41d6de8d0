"""Roles: create, edit, archive and unarchive them."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from helpdesk.conversations import access
from helpdesk.errors import ActionError
from helpdesk.events import audit

from ..models import Employee, Role, Scope
from ..permissions import Perm
from ._common import (
    _UNSET,
    _access_changed,
    _clean_name,
    _ensure_roles_can_still_be_managed,
    _lock_company,
    _same_company,
)


def role_state(role: Role) -> dict[str, Any]:
    return {
        "name": role.name,
        "scope": role.scope,
        "permissions": sorted(role.permissions),
        "archived": role.archived,
    }


def _clean_permissions(permissions: list[str]) -> list[str]:
    unknown = sorted(set(permissions) - set(Perm.values))
    if unknown:
        raise ActionError(
            _("Unknown permission: %(names)s.") % {"names": ", ".join(unknown)}, code="unknown_permission"
        )
    return sorted(set(permissions))


def _clean_scope(scope: str) -> str:
    if scope not in Scope.values:
        raise ActionError(_("Unknown conversation access: %(scope)s.") % {"scope": scope}, code="unknown_scope")
    return scope


def _unique_role_name(company_id: int, name: str, *, exclude: int | None = None) -> None:
    taken = Role.objects.filter(company_id=company_id, name__iexact=name).exclude(pk=exclude)
    if taken.exists():
        raise ActionError(_("A role named %(name)s already exists.") % {"name": name}, code="duplicate", field="name")


@transaction.atomic(durable=True)
def create_role(*, by: Employee, name: str, permissions: list[str], scope: str) -> Role:
    access.require(by, Perm.MANAGE_ROLES)
    _lock_company(by.company_id)
    name = _clean_name(name)
    _unique_role_name(by.company_id, name)
    role = Role.objects.create(
        company_id=by.company_id, name=name, permissions=_clean_permissions(permissions), scope=_clean_scope(scope)
    )
    audit.record("role.created", company=by.company_id, actor=by, obj=role, after=role_state(role))
    return role


@transaction.atomic(durable=True)
def update_role(
    role: Role, *, by: Employee, name: str = _UNSET, permissions: list[str] = _UNSET, scope: str = _UNSET
) -> Role:
    """Rename a role, change what it allows or how much it sees. Never the editor's own role."""
    access.require(by, Perm.MANAGE_ROLES)
    _same_company(by, role)
    _lock_company(by.company_id)
    role = Role.objects.select_for_update().get(pk=role.pk)
    if role.pk == by.role_id:
        raise ActionError(_("You can't edit the role you hold yourself."), code="own_role")
    if role.archived:
        raise ActionError(_("An archived role can't be edited; unarchive it first."), code="archived")
    before = role_state(role)
    if name is not _UNSET:
        role.name = _clean_name(name)
        _unique_role_name(by.company_id, role.name, exclude=role.pk)
    if permissions is not _UNSET:
        role.permissions = _clean_permissions(permissions)
    if scope is not _UNSET:
        role.scope = _clean_scope(scope)
    role.save(update_fields=["name", "permissions", "scope"])
    if (role.scope, sorted(role.permissions)) != (before["scope"], before["permissions"]):
        _access_changed(Employee.objects.filter(role=role, is_active=True).values_list("pk", flat=True))
    _ensure_roles_can_still_be_managed(by.company_id)
    audit.record("role.updated", company=by.company_id, actor=by, obj=role, before=before, after=role_state(role))
    return role


@transaction.atomic(durable=True)
def archive_role(role: Role, *, by: Employee) -> Role:
    """Retire a role: it stays (statistics and history keep its name) but nobody new gets it."""
    access.require(by, Perm.MANAGE_ROLES)
    _same_company(by, role)
    _lock_company(by.company_id)
    role = Role.objects.select_for_update().get(pk=role.pk)
    if role.pk == by.role_id:
        raise ActionError(_("You can't edit the role you hold yourself."), code="own_role")
    if role.builtin:
        raise ActionError(_("Built-in roles can't be archived."), code="builtin")
    if role.archived:
        return role
    holders = Employee.objects.filter(role=role, is_active=True).count()
    if holders:
        raise ActionError(
            ngettext(
                "%(count)s active employee holds this role; give them another role first.",
                "%(count)s active employees hold this role; give them another role first.",
                holders,
            )
            % {"count": holders},
            code="role_in_use",
        )
    before = role_state(role)
    role.archived_at = timezone.now()
    role.save(update_fields=["archived_at"])
    _ensure_roles_can_still_be_managed(by.company_id)
    audit.record("role.archived", company=by.company_id, actor=by, obj=role, before=before, after=role_state(role))
    return role


@transaction.atomic(durable=True)
def unarchive_role(role: Role, *, by: Employee) -> Role:
    access.require(by, Perm.MANAGE_ROLES)
    _same_company(by, role)
    _lock_company(by.company_id)
    role = Role.objects.select_for_update().get(pk=role.pk)
    if not role.archived:
        return role
    before = role_state(role)
    role.archived_at = None
    role.save(update_fields=["archived_at"])
    audit.record("role.unarchived", company=by.company_id, actor=by, obj=role, before=before, after=role_state(role))
    return role
