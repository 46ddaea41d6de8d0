from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission


class IsEmployee(BasePermission):
    """Signed in, and an active employee of some company."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        employee = getattr(user, "employee", None) if user and user.is_authenticated else None
        return bool(employee and employee.is_active)


class _HoldsAny(IsEmployee):
    perms: tuple[str, ...] = ()
    message = _("Your role does not allow this.")

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and any(request.user.employee.can(p) for p in self.perms)


def holds_any(*perms: str) -> type[BasePermission]:
    """An active employee whose role grants at least one of ``perms`` (for reading admin data)."""
    return type("HoldsAny", (_HoldsAny,), {"perms": perms})
