"""The platform level: creating companies with their built-in roles and first people.

These run for the installation's operator (management commands, Django admin, the demo and
the tests), not for an employee: the company's own administration goes through actions.py.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from helpdesk.conversations.models import Channel, ChannelKind

from .models import BUILTIN_ROLE_NAMES, BuiltinRole, Company, Employee, Role, Scope, Team, username_for
from .permissions import ADMIN_PERMS, AGENT_PERMS, SUPER_ADMIN_PERMS

BUILTIN_ROLES = {
    BuiltinRole.AGENT: (Scope.TEAMS, AGENT_PERMS),
    BuiltinRole.ADMIN: (Scope.ALL, ADMIN_PERMS),
    BuiltinRole.SUPER_ADMIN: (Scope.ALL, SUPER_ADMIN_PERMS),
}


@transaction.atomic
def create_company(*, name: str, timezone: str = "UTC", description: str = "", demo: bool = False) -> Company:
    """A company with its three built-in roles; ``demo``: the one seed_demo makes (see Company.is_demo)."""
    company = Company(name=name, timezone=timezone, description=description, is_demo=demo)
    company.full_clean()
    company.save()
    ensure_builtin_roles(company)
    return company


def ensure_builtin_roles(company: Company) -> None:
    """Seed the agent, admin and super-admin roles the company lacks (safe to repeat)."""
    existing = set(Role.objects.filter(company=company).values_list("builtin", flat=True))
    for builtin, (scope, perms) in BUILTIN_ROLES.items():
        if builtin in existing:
            continue
        Role.objects.create(
            company=company,
            name=BUILTIN_ROLE_NAMES[builtin],
            builtin=builtin,
            scope=scope,
            permissions=[str(p) for p in perms],
        )


@transaction.atomic
def create_employee(
    *,
    company: Company,
    email: str,
    name: str,
    role: str | Role = BuiltinRole.AGENT,
    password: str | None = None,
    teams: list[Team] | None = None,
    capacity: int = 10,
) -> Employee:
    """A person who works in the inbox; ``role`` is a built-in role's key or a Role."""
    if isinstance(role, str):
        role = Role.objects.get(company=company, builtin=role)
    if role.company_id != company.pk:
        raise ValueError("The role belongs to another company.")
    email = email.lower()
    user = get_user_model().objects.create_user(username=username_for(email), email=email, password=password)
    employee = Employee.objects.create(user=user, company=company, role=role, display_name=name, capacity=capacity)
    if teams:
        employee.teams.set(teams)
    return employee


def create_team(*, company: Company, name: str, members: list[Employee] = ()) -> Team:
    team = Team.objects.create(company=company, name=name)
    team.members.set(members)
    return team


def create_widget_channel(
    *, company: Company, name: str, allowed_origins: list[str], team: Team | None = None, **settings
) -> Channel:
    return Channel.objects.create(
        company=company,
        kind=ChannelKind.WIDGET,
        name=name,
        team=team,
        settings={"allowed_origins": list(allowed_origins), **settings},
    )


@transaction.atomic
def create_company_with_super_admin(
    *, name: str, timezone: str, admin_email: str, admin_name: str, description: str = ""
) -> tuple[Company, Employee]:
    """What the operator does for a new customer: the company and the person who runs it."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    admin_email = admin_email.strip().lower()
    validate_email(admin_email)
    if get_user_model().objects.filter(username=username_for(admin_email)).exists():
        raise ValidationError(f"An account with the e-mail {admin_email} already exists.")
    company = create_company(name=name, timezone=timezone, description=description)
    admin = create_employee(
        company=company, email=admin_email, name=admin_name.strip() or admin_email, role=BuiltinRole.SUPER_ADMIN
    )
    return company, admin
