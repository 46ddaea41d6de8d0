"""The platform level: the operator creates companies and their first super-admin."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from helpdesk.accounts.models import BuiltinRole, Company, Employee, Role
from helpdesk.events.models import AuditEntry


def test_the_command_creates_a_company_its_roles_and_its_super_admin(db):
    out = StringIO()
    call_command(
        "create_company", "Initech", admin_email="Boss@Initech.test", admin_name="Bill", timezone="Europe/Moscow",
        base_url="https://support.initech.test", stdout=out,
    )  # fmt: skip
    company = Company.objects.get(name="Initech")
    assert company.timezone == "Europe/Moscow"
    assert set(Role.objects.filter(company=company).values_list("builtin", flat=True)) == set(BuiltinRole.values)
    boss = Employee.objects.get(company=company)
    assert (boss.user.email, boss.role.builtin, boss.display_name) == ("boss@initech.test", "super_admin", "Bill")
    assert not boss.user.has_usable_password()
    assert "https://support.initech.test/account/set-password/" in out.getvalue()
    assert AuditEntry.objects.get(company=company).action == "company.created"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"admin_email": "not-an-email"}, "valid email"),
        ({"timezone": "Mars/Olympus"}, "not a known time zone"),
    ],
)
def test_the_command_refuses_bad_input_and_creates_nothing(db, kwargs, message):
    options = {"admin_email": "a@b.test", "timezone": "UTC", **kwargs}
    with pytest.raises(CommandError) as error:
        call_command("create_company", "Initech", **options, stdout=StringIO())
    assert message in str(error.value).lower() or message in str(error.value)
    assert not Company.objects.filter(name="Initech").exists()


def test_the_command_refuses_an_email_that_has_an_account(cast):
    with pytest.raises(CommandError):
        call_command("create_company", "Initech", admin_email="bob@acme.test", stdout=StringIO())
    assert not Company.objects.filter(name="Initech").exists()


def test_a_superuser_adds_a_company_in_the_django_admin(client, django_user_model):
    operator = django_user_model.objects.create_superuser("root@platform.test", "root@platform.test", "x" * 12)
    client.force_login(operator)
    response = client.post(
        reverse("admin:accounts_company_add"),
        {
            "name": "Hooli",
            "timezone": "UTC",
            "description": "",
            "admin_email": "gavin@hooli.test",
            "admin_name": "Gavin",
        },
        follow=True,
    )
    assert response.status_code == 200
    company = Company.objects.get(name="Hooli")
    assert Employee.objects.get(company=company).role.builtin == "super_admin"
    assert Role.objects.filter(company=company).count() == 3
    assert "/account/set-password/" in response.content.decode()


def test_an_employee_cannot_reach_the_django_admin(client, cast):
    client.force_login(cast.sam.user)
    response = client.get(reverse("admin:accounts_company_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response.url
