"""The top bar's places (Reports) and the settings area's sections, each shown to the roles that open it."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm


@dataclass(frozen=True)
class Section:
    label: str | Promise
    url_name: str
    perm: str | None  # None: every employee (their own tokens, their own sign-in)

    def open_to(self, employee: Employee) -> bool:
        return self.perm is None or employee.can(self.perm)


# The settings area, in this order. (Each capability adds its own line.)
SECTIONS = [
    Section(_("Company"), "web:settings-company", Perm.MANAGE_COMPANY),
    Section(_("Employees"), "web:employees", Perm.MANAGE_EMPLOYEES),
    Section(_("Teams"), "web:teams", Perm.MANAGE_EMPLOYEES),
    Section(_("Roles"), "web:roles", Perm.MANAGE_ROLES),
    Section(_("Channels"), "web:channels", Perm.MANAGE_CHANNELS),
    Section(_("Canned responses"), "web:canned-responses", None),  # everyone keeps their own
    Section(_("Quick answers"), "web:quick-answers", Perm.MANAGE_CANNED),
    Section(_("Blocked contacts"), "web:blocked-contacts", Perm.BLOCK_CONTACTS),
    Section(_("Audit log"), "web:audit-log", Perm.VIEW_AUDIT_LOG),
    Section(_("Trash"), "web:trash", Perm.RESTORE),
    Section(_("API tokens"), "web:api-tokens", None),
    Section(_("Two-factor sign-in"), "web:two-factor", None),
]


def sections_for(employee: Employee) -> list[dict[str, str]]:
    return [
        {"label": str(section.label), "url": reverse(section.url_name), "url_name": section.url_name}
        for section in SECTIONS
        if section.open_to(employee)
    ]


def navigation(request) -> dict:
    """Context processor: the settings sections of the signed-in employee (for the top bar and the sidebar)."""
    employee = getattr(request.user, "employee", None) if request.user.is_authenticated else None
    if employee is None or not employee.is_active:
        return {}
    # Callables: templates evaluate them only on the pages that show the navigation.
    return {
        "settings_sections": lambda: sections_for(employee),
        "reports_open": lambda: employee.can(Perm.VIEW_REPORTS),
    }
