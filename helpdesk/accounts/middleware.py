"""Show times in the signed-in employee's company time zone."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone


class CompanyTimezoneMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        employee = getattr(request.user, "employee", None) if request.user.is_authenticated else None
        if employee is not None:
            timezone.activate(zoneinfo.ZoneInfo(employee.company.timezone))
        else:
            timezone.deactivate()
        return self.get_response(request)
