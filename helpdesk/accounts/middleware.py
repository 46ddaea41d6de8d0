"""Show times in the signed-in employee's company time zone."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone

from .models import Employee


def _employee(user) -> Employee | None:
    """The signed-in user's employee, read once with their company and role (each request needs
    all three: this time zone, then the access gate), and kept on the user for the view."""
    if Employee.user.field.remote_field.is_cached(user):
        return getattr(user, "employee", None)
    employee = Employee.objects.select_related("company", "role").filter(user=user).first()
    if employee is not None:
        user.employee = employee
    return employee


class CompanyTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        employee = _employee(request.user) if request.user.is_authenticated else None
        if employee is not None:
            timezone.activate(zoneinfo.ZoneInfo(employee.company.timezone))
        else:
            timezone.deactivate()
        return self.get_response(request)
