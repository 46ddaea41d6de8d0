"""The admins' settings pages: company, employees, teams and roles (one module each).

Reads start from ``access`` (another company's id is a 404), every change goes through
``helpdesk.accounts.actions`` (which checks the rules and writes the audit log), and every
form answers a successful POST with a redirect and a flash message.
"""

from .company import company_logo, company_logo_remove, company_logo_upload, company_settings
from .employees import (
    employee_add,
    employee_deactivate,
    employee_detail,
    employee_list,
    employee_reactivate,
    employee_reset_2fa,
    employee_send_link,
)
from .roles import role_add, role_archive, role_detail, role_list, role_unarchive
from .teams import team_detail, team_list

__all__ = [
    "company_logo",
    "company_logo_remove",
    "company_logo_upload",
    "company_settings",
    "employee_add",
    "employee_deactivate",
    "employee_detail",
    "employee_list",
    "employee_reactivate",
    "employee_reset_2fa",
    "employee_send_link",
    "role_add",
    "role_archive",
    "role_detail",
    "role_list",
    "role_unarchive",
    "team_detail",
    "team_list",
]
