from rest_framework.permissions import BasePermission


class IsEmployee(BasePermission):
    """Signed in, and an active employee of some company."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        employee = getattr(user, "employee", None) if user and user.is_authenticated else None
        return bool(employee and employee.is_active)
