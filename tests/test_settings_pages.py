"""The admins' settings pages: company, employees, teams and roles.

Each page opens for its permission only (403 for agents, sign-in for anonymous, 404 for
another company's ids); each form saves through the actions, and each refusal shows the
action's message and changes nothing.
"""

from __future__ import annotations

import html
import io
from datetime import UTC, datetime

import pyotp
import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from helpdesk.accounts import actions
from helpdesk.accounts.models import Company, CompanyLogo, Employee, Role, Scope, Team
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import actions as conversations
from helpdesk.events.models import AuditEntry
from tests.conftest import login
from tests.helpers import count_queries


def text(response) -> str:
    """The page as a reader sees it (entities decoded), to look for messages in it."""
    return html.unescape(response.content.decode())


def audit_count() -> int:
    return AuditEntry.objects.count()


def png(size: int = 8, color: str = "purple") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


def company_row(company: Company) -> tuple:
    company.refresh_from_db()
    return (
        company.name,
        company.description,
        company.timezone,
        company.working_hours,
        company.require_2fa_for_admins,
        bytes(CompanyLogo.objects.get(company=company).data) if company.logo_content_type else b"",
        company.logo_content_type,
    )


def employee_row(employee: Employee) -> tuple:
    employee.refresh_from_db()
    return (
        employee.display_name,
        employee.role_id,
        sorted(employee.teams.values_list("pk", flat=True)),
        employee.capacity,
        employee.is_active,
    )


def role_row(role: Role) -> tuple:
    role.refresh_from_db()
    return (role.name, role.scope, sorted(role.permissions), role.archived)


# --- Who may open what ------------------------------------------------------------------------------------------

PAGES = {
    # url name: (the args, built from the cast; who may open it)
    "web:settings-company": (lambda c: [], "alice"),
    "web:employees": (lambda c: [], "alice"),
    "web:employee-add": (lambda c: [], "alice"),
    "web:employee": (lambda c: [c.bob.pk], "alice"),
    "web:teams": (lambda c: [], "alice"),
    "web:team": (lambda c: [c.sales.pk], "alice"),
    "web:roles": (lambda c: [], "sam"),
    "web:role-add": (lambda c: [], "sam"),
    "web:role": (lambda c: [c.bob.role.pk], "sam"),
}


@pytest.mark.parametrize("name", PAGES)
def test_each_page_opens_for_its_permission_only(client, cast, name):
    args, allowed = PAGES[name]
    url = reverse(name, args=args(cast))
    assert client.get(url).status_code == 302  # anonymous: to the sign-in page
    assert client.get(url).url.startswith(reverse("web:login"))
    login(client, getattr(cast, allowed))
    response = client.get(url)
    assert response.status_code == 200
    assert response.context["settings_page"] is True and response.context["section"]
    login(client, cast.bob)
    assert client.get(url).status_code == 403


def test_an_admin_without_the_roles_permission_gets_403_on_the_role_editor(client, cast):
    login(client, cast.alice)
    assert client.get(reverse("web:roles")).status_code == 403
    role = Role.objects.get(name="Assigned only")
    before = role_row(role)
    response = client.post(reverse("web:role", args=[role.pk]), {"name": "Hacked", "scope": "all"})
    assert response.status_code == 403 and role_row(role) == before


@pytest.mark.parametrize(
    ("name", "obj"),
    [
        ("web:employee", "bob"),
        ("web:employee-send-link", "bob"),
        ("web:employee-deactivate", "bob"),
        ("web:employee-reactivate", "bob"),
        ("web:team", "sales"),
        ("web:role", "role"),
        ("web:role-archive", "role"),
        ("web:role-unarchive", "role"),
    ],
)
def test_another_companys_ids_are_404_and_change_nothing(client, cast, name, obj):
    # Carol, made a super-admin of Globex, holds every permission: only the company stops her.
    Employee.objects.filter(pk=cast.carol.pk).update(role=Role.objects.get(company=cast.globex, builtin="super_admin"))
    target = Role.objects.get(name="Assigned only") if obj == "role" else getattr(cast, obj)
    audits = audit_count()
    login(client, cast.carol)
    url = reverse(name, args=[target.pk])
    assert client.get(url).status_code == (404 if name in ("web:employee", "web:team", "web:role") else 405)
    assert client.post(url, {"name": "Mine now", "scope": "all", "capacity": 1}).status_code == 404
    assert audit_count() == audits
    assert Employee.objects.get(pk=cast.bob.pk).is_active
    assert Team.objects.get(pk=cast.sales.pk).name == "Sales"
    assert Role.objects.get(name="Assigned only").archived_at is None


def test_a_malformed_id_is_404(client, cast):
    login(client, cast.alice)
    assert client.get("/settings/employees/abc/").status_code == 404
    assert client.get(reverse("web:employee", args=[10**9])).status_code == 404


@pytest.mark.parametrize(
    "name", ["web:employee-send-link", "web:employee-deactivate", "web:employee-reactivate", "web:company-logo-remove"]
)
def test_buttons_only_answer_post(client, cast, name):
    login(client, cast.sam)
    args = [] if name == "web:company-logo-remove" else [cast.bob.pk]
    assert client.get(reverse(name, args=args)).status_code == 405


def test_forms_need_the_csrf_token(cast):
    client = Client(enforce_csrf_checks=True)
    login(client, cast.alice)
    response = client.post(reverse("web:teams"), {"name": "Night"})
    assert response.status_code == 403 and not Team.objects.filter(name="Night").exists()


def test_the_settings_navigation_lists_the_sections_in_order(client, cast):
    login(client, cast.sam)
    labels = [s["label"] for s in client.get(reverse("web:roles")).context["settings_sections"]()]
    assert labels == [
        "Company", "Employees", "Teams", "Roles", "Channels", "Canned responses", "Quick answers", "Blocked contacts",
        "Audit log", "Trash", "API tokens", "Two-factor sign-in",
    ]  # fmt: skip
    login(client, cast.alice)
    labels = [s["label"] for s in client.get(reverse("web:teams")).context["settings_sections"]()]
    assert labels == [
        "Company",
        "Employees",
        "Teams",
        "Channels",
        "Canned responses",
        "Quick answers",
        "Blocked contacts",
        "Audit log",
        "Trash",
        "API tokens",
        "Two-factor sign-in",
    ]
    login(client, cast.bob)
    labels = [s["label"] for s in client.get(reverse("web:two-factor")).context["settings_sections"]()]
    # An agent's settings are their own: canned responses, keys and sign-in.
    assert labels == ["Canned responses", "API tokens", "Two-factor sign-in"]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_renders_in_russian(client, cast, name):
    args, allowed = PAGES[name]
    login(client, getattr(cast, allowed))
    client.post(reverse("set_language"), {"language": "ru"})
    response = client.get(reverse(name, args=args(cast)))
    assert response.status_code == 200 and '<html lang="ru">' in response.content.decode()
    assert "Настройки" in text(response)  # the settings sidebar's title, from the catalogue


# --- Company ----------------------------------------------------------------------------------------------------


def company_form(**changes) -> dict:
    data = {
        "name": "Acme Inc.",
        "description": "Rockets and anvils",
        "timezone": "Asia/Yekaterinburg",
        "require_2fa_for_admins": "on",
        "open_0": "on",
        "start_0": "09:00",
        "end_0": "18:00",
        "open_5": "on",
        "start_5": "10:30",
        "end_5": "14:00",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def test_an_admin_saves_the_company_settings(client, cast):
    login(client, cast.alice)
    response = client.post(reverse("web:settings-company"), company_form())
    assert response.status_code == 302 and response.url == reverse("web:settings-company")
    assert company_row(cast.acme)[:5] == (
        "Acme Inc.",
        "Rockets and anvils",
        "Asia/Yekaterinburg",
        {"0": ["09:00", "18:00"], "5": ["10:30", "14:00"]},
        True,
    )
    assert AuditEntry.objects.filter(action="company.updated", actor=cast.alice).exists()
    # Alice is an admin without two-factor sign-in: the company now requires it of her.
    page = client.get(response.url, follow=True)
    assert page.redirect_chain == [(reverse("web:two-factor"), 302)] and "Saved." in text(page)
    actions.enable_totp(cast.alice, secret=(secret := actions.new_totp_secret()), code=pyotp.TOTP(secret).now())
    page = client.get(response.url)
    # The form shows what is stored: Monday and Saturday open, the rest days off.
    form = page.context["form"]
    assert [form[f"open_{day}"].value() for day in range(7)] == [True, False, False, False, False, True, False]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start_0": "18:00", "end_0": "09:00"}, "Each day's working hours must end after they start."),
        ({"name": "  "}, "The name can't be empty."),
        ({"timezone": "Mars/Olympus"}, "Select a valid choice."),
        ({"start_5": None}, "Enter the opening and the closing time."),
        ({"end_0": "25:99"}, "Enter a valid time."),
    ],
)
def test_bad_company_settings_are_refused_and_nothing_changes(client, cast, changes, message):
    login(client, cast.alice)
    before, audits = company_row(cast.acme), audit_count()
    response = client.post(reverse("web:settings-company"), company_form(**changes))
    assert response.status_code == 200 and message in text(response)
    assert company_row(cast.acme) == before and audit_count() == audits


def test_the_time_zone_list_starts_with_utc_and_groups_real_zones(client, cast):
    login(client, cast.alice)
    choices = client.get(reverse("web:settings-company")).context["form"].fields["timezone"].choices
    assert choices[0] == ("UTC", "UTC")
    groups = dict(choices[1:])
    assert ("Europe/Moscow", "Moscow (UTC+03:00)") in groups["Europe"]
    assert "US" not in groups and "Etc" not in groups  # legacy aliases are left out


def test_an_agent_cannot_change_the_company(client, cast):
    login(client, cast.bob)
    before = company_row(cast.acme)
    assert client.post(reverse("web:settings-company"), company_form()).status_code == 403
    assert company_row(cast.acme) == before


def test_times_are_shown_in_the_companys_time_zone(client, cast):
    Employee.objects.filter(pk=cast.bob.pk).update(created_at=datetime(2024, 1, 2, 10, 30, tzinfo=UTC))
    login(client, cast.alice)
    page = text(client.get(reverse("web:employee", args=[cast.bob.pk])))
    assert "Jan. 2, 2024, 1:30 p.m." in page  # Acme is in Moscow: UTC+3


# --- Logo -------------------------------------------------------------------------------------------------------


def upload(client, data: bytes, name: str = "logo.png", content_type: str = "image/png"):
    return client.post(
        reverse("web:company-logo-upload"), {"logo": SimpleUploadedFile(name, data, content_type=content_type)}
    )


def test_a_png_logo_is_saved_served_and_shown_in_the_top_bar(client, cast):
    login(client, cast.alice)
    image = png()
    response = upload(client, image)
    assert response.status_code == 302 and response.url == reverse("web:settings-company")
    assert company_row(cast.acme)[5:] == (image, "image/png")
    served = client.get(reverse("web:company-logo"))
    assert served.status_code == 200 and served.content == image
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert served["Cache-Control"] == "private, max-age=86400"
    # Every employee of the company sees it next to the company name.
    login(client, cast.bob)
    assert client.get(reverse("web:company-logo")).content == image
    inbox = client.get(reverse("web:inbox")).content.decode()
    assert 'data-testid="company-logo"' in inbox and reverse("web:company-logo") + "?v=" in inbox


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (SVG, "logo.svg", "The logo must be a PNG, JPEG, GIF or WebP image."),
        (b"GIF89a this is not really a gif", "logo.gif", "The logo must be a PNG, JPEG, GIF or WebP image."),
        (png()[:40], "cut.png", "The logo must be a PNG, JPEG, GIF or WebP image."),
        (png() + b"\0" * (512 * 1024), "big.png", "The logo can be at most 512 KB."),
    ],
)
def test_a_logo_that_is_not_a_small_image_is_refused(client, cast, data, name, message):
    actions.set_company_logo(cast.acme, by=cast.alice, data=png(color="red"))
    login(client, cast.alice)
    before, audits = company_row(cast.acme), audit_count()
    response = upload(client, data, name=name, content_type="image/svg+xml" if name.endswith("svg") else "image/png")
    assert response.status_code == 200 and message in text(response)
    assert company_row(cast.acme) == before and audit_count() == audits


def test_an_upload_without_a_file_says_so(client, cast):
    login(client, cast.alice)
    response = client.post(reverse("web:company-logo-upload"), {})
    assert response.status_code == 200 and "This field is required." in text(response)


def test_the_logo_is_removed(client, cast):
    actions.set_company_logo(cast.acme, by=cast.alice, data=png())
    login(client, cast.alice)
    response = client.post(reverse("web:company-logo-remove"), follow=True)
    assert "The logo is removed." in text(response)
    assert company_row(cast.acme)[5:] == (b"", "")
    assert client.get(reverse("web:company-logo")).status_code == 404
    assert 'data-testid="company-logo"' not in response.content.decode()


def test_the_logo_is_served_only_to_its_own_companys_employees(client, cast):
    image = png()
    actions.set_company_logo(cast.acme, by=cast.alice, data=image)
    assert client.get(reverse("web:company-logo")).status_code == 302  # anonymous
    login(client, cast.carol)
    assert client.get(reverse("web:company-logo")).status_code == 404  # Globex has none; Acme's stays Acme's
    globex_logo = png(color="green")
    actions.set_company_logo(cast.globex, by=cast.carol, data=globex_logo)
    assert client.get(reverse("web:company-logo")).content == globex_logo


def test_an_agent_cannot_change_the_logo(client, cast):
    login(client, cast.bob)
    assert upload(client, png()).status_code == 403
    assert client.post(reverse("web:company-logo-remove")).status_code == 403
    assert company_row(cast.acme)[5:] == (b"", "")


# --- Employees --------------------------------------------------------------------------------------------------


def test_the_employee_list_shows_roles_teams_and_status(client, cast):
    actions.deactivate_employee(cast.dave, by=cast.sam)
    assigned_only = Role.objects.get(name="Assigned only")
    actions.archive_role(assigned_only, by=cast.sam)
    login(client, cast.alice)
    active = client.get(reverse("web:employees"))
    assert [e.display_name for e in active.context["employees"]] == ["Alice", "Bob", "Erin", "Sam"]
    assert active.context["counts"] == {"active": 4, "deactivated": 1}
    page = text(active)
    assert "bob@acme.test" in page and "Sales" in page and "Super-admin" in page
    deactivated = client.get(reverse("web:employees"), {"status": "deactivated"})
    assert [e.display_name for e in deactivated.context["employees"]] == ["Dave"]
    assert "Assigned only" in text(deactivated) and "archived" in text(deactivated)
    assert client.get(reverse("web:employees"), {"status": "everyone"}).status_code == 404


def test_the_employee_list_query_count_does_not_grow_with_rows(client, cast):
    login(client, cast.alice)
    url = reverse("web:employees")
    client.get(url)  # warm the session
    few = count_queries(lambda: client.get(url))
    for i in range(12):
        actions.add_employee(
            by=cast.alice, email=f"bulk{i}@acme.test", name=f"Bulk {i}", role=cast.bob.role, teams=[cast.sales]
        )
    assert count_queries(lambda: client.get(url)) == few
    assert len(client.get(url).context["employees"]) == 17


def add_form(cast, **changes) -> dict:
    data = {
        "email": "Nina@Acme.test",
        "name": "Nina",
        "role": cast.bob.role.pk,
        "teams": [cast.sales.pk, cast.support.pk],
        "capacity": 4,
    }
    data.update(changes)
    return data


def test_an_admin_adds_an_employee_and_the_set_password_link_is_e_mailed(client, cast, settings):
    settings.PUBLIC_URL = "https://help.acme.test"
    login(client, cast.alice)
    response = client.post(reverse("web:employee-add"), add_form(cast))
    nina = Employee.objects.get(user__email="nina@acme.test")
    assert response.status_code == 302 and response.url == reverse("web:employee", args=[nina.pk])
    assert (nina.display_name, nina.role, nina.capacity, nina.company) == ("Nina", cast.bob.role, 4, cast.acme)
    assert set(nina.teams.all()) == {cast.sales, cast.support}
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["nina@acme.test"]
    assert "https://help.acme.test/account/set-password/" in mail.outbox[0].body
    page = text(client.get(response.url))
    assert "Nina is added. We e-mailed nina@acme.test a link to choose a password." in page


def test_without_a_public_url_the_link_uses_the_address_of_the_request(client, cast, settings):
    settings.PUBLIC_URL = ""
    login(client, cast.alice)
    client.post(reverse("web:employee-add"), add_form(cast))
    assert "http://testserver/account/set-password/" in mail.outbox[0].body


def test_an_employee_is_added_even_when_the_e_mail_cannot_be_sent(client, cast, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr("helpdesk.accounts.actions.employees.send_mail", broken)
    login(client, cast.alice)
    response = client.post(reverse("web:employee-add"), add_form(cast), follow=True)
    assert Employee.objects.filter(user__email="nina@acme.test").exists()
    assert "could not be sent" in text(response)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "bob@acme.test"}, "Someone with the e-mail bob@acme.test already has an account."),
        ({"email": "not-an-email"}, "Enter a valid e-mail address."),
        ({"name": " "}, "The name can't be empty."),
        ({"capacity": -1}, "Capacity must be a whole number, 0 or more."),
        ({"capacity": "many"}, "Enter a whole number."),
    ],
)
def test_bad_new_employees_are_refused_with_the_reason(client, cast, changes, message):
    login(client, cast.alice)
    count, audits = Employee.objects.count(), audit_count()
    response = client.post(reverse("web:employee-add"), add_form(cast, **changes))
    assert response.status_code == 200 and message in text(response)
    assert Employee.objects.count() == count and audit_count() == audits and mail.outbox == []


def test_an_actions_error_is_shown_on_its_field(client, cast):
    login(client, cast.alice)
    response = client.post(reverse("web:employee-add"), add_form(cast, email="bob@acme.test"))
    assert response.context["form"].errors["email"] == ["Someone with the e-mail bob@acme.test already has an account."]


def test_an_admin_is_offered_only_roles_they_may_give(client, cast):
    temp = actions.create_role(by=cast.sam, name="Temp", permissions=["reply"], scope="assigned")
    actions.archive_role(temp, by=cast.sam)
    login(client, cast.alice)
    form = client.get(reverse("web:employee-add")).context["form"]
    # Not the super-admin's (more powers than an admin has), not an archived one.
    assert {r.name for r in form.fields["role"].queryset} == {"Admin", "Agent", "Assigned only"}
    assert form["role"].value() == cast.bob.role_id  # the fewest powers come ticked: the agent's


@pytest.mark.parametrize("which", ["super_admin", "archived", "globex"])
def test_a_forged_role_is_refused_and_nobody_is_added(client, cast, which):
    if which == "archived":
        role = actions.create_role(by=cast.sam, name="Temp", permissions=["reply"], scope="assigned")
        actions.archive_role(role, by=cast.sam)
    else:
        role = Role.objects.get(company=cast.globex if which == "globex" else cast.acme, builtin="super_admin")
    login(client, cast.alice)
    count = Employee.objects.count()
    response = client.post(reverse("web:employee-add"), add_form(cast, role=role.pk))
    assert response.status_code == 200 and "Select a valid choice." in text(response)
    assert Employee.objects.count() == count


def test_another_companys_team_is_refused(client, cast):
    globex_team = Team.objects.create(company=cast.globex, name="Globex team")
    login(client, cast.alice)
    count = Employee.objects.count()
    response = client.post(reverse("web:employee-add"), add_form(cast, teams=[globex_team.pk]))
    assert response.status_code == 200 and "Select a valid choice." in text(response)
    assert Employee.objects.count() == count


def test_an_admin_edits_an_employee(client, cast):
    login(client, cast.alice)
    dave_role = Role.objects.get(name="Assigned only")
    url = reverse("web:employee", args=[cast.bob.pk])
    form = client.get(url).context["form"]
    assert (form["name"].value(), form["role"].value(), form["teams"].value(), form["capacity"].value()) == (
        "Bob",
        cast.bob.role_id,
        [cast.sales.pk],
        10,
    )
    form = {"name": "Robert", "role": dave_role.pk, "teams": [cast.support.pk], "capacity": 7}
    response = client.post(url, form)
    assert response.status_code == 302 and response.url == url
    assert employee_row(cast.bob) == ("Robert", dave_role.pk, [cast.support.pk], 7, True)
    page = text(client.get(url))
    assert "Saved." in page
    # The change is in the employee's history, with what changed.
    history = client.get(url).context["history"]
    assert history[0]["what"] == "Changed" and history[0]["actor"] == "Alice"
    assert set(history[0]["fields"]) == {"name", "role", "teams", "capacity"}


def test_a_refused_edit_shows_the_message_on_the_field_and_changes_nothing(client, cast):
    login(client, cast.alice)
    before, audits = employee_row(cast.bob), audit_count()
    url = reverse("web:employee", args=[cast.bob.pk])
    response = client.post(url, {"name": "Bob", "role": cast.bob.role_id, "capacity": 5000})
    assert response.status_code == 200
    assert response.context["form"].errors["capacity"] == ["Capacity can be at most 1000."]
    assert employee_row(cast.bob) == before and audit_count() == audits


def test_an_admin_sees_but_cannot_edit_someone_more_powerful(client, cast):
    login(client, cast.alice)
    url = reverse("web:employee", args=[cast.sam.pk])
    response = client.get(url)
    page = response.content.decode()
    assert response.context["form"] is None and 'data-testid="read-only"' in page
    for button in ("send-link", "deactivate", "employee-form"):
        assert f'data-testid="{button}"' not in page
    before = employee_row(cast.sam)
    assert client.post(url, {"name": "Samuel", "role": cast.sam.role_id, "capacity": 1}).status_code == 403
    assert client.post(reverse("web:employee-deactivate", args=[cast.sam.pk])).status_code == 403
    assert employee_row(cast.sam) == before


def test_on_their_own_page_an_admin_cannot_change_their_role_or_deactivate_themselves(client, cast):
    login(client, cast.alice)
    url = reverse("web:employee", args=[cast.alice.pk])
    page = client.get(url)
    assert page.context["form"].fields["role"].disabled
    assert 'data-testid="deactivate"' not in page.content.decode()
    # A forged role is ignored (the field is disabled): the name changes, the role does not.
    client.post(url, {"name": "Alice A.", "role": cast.bob.role_id, "capacity": 3})
    assert employee_row(cast.alice)[:2] == ("Alice A.", cast.alice.role_id)
    response = client.post(reverse("web:employee-deactivate", args=[cast.alice.pk]), follow=True)
    assert "You can't deactivate yourself." in text(response)
    assert Employee.objects.get(pk=cast.alice.pk).is_active


def test_an_admin_deactivates_and_reactivates_an_employee(client, cast):
    conversations.assign(cast.conversation, by=cast.alice, assignee=cast.bob)
    login(client, cast.alice)
    response = client.post(reverse("web:employee-deactivate", args=[cast.bob.pk]), follow=True)
    assert "Bob is deactivated. Their open or snoozed conversation is back in its team’s queue." in text(response)
    cast.bob.refresh_from_db()
    assert not cast.bob.is_active and not cast.bob.user.is_active
    assert 'data-testid="reactivate"' in response.content.decode()
    response = client.post(reverse("web:employee-reactivate", args=[cast.bob.pk]), follow=True)
    assert "Bob is active again." in text(response)
    assert Employee.objects.get(pk=cast.bob.pk).is_active
    assert [h["what"] for h in response.context["history"]] == ["Reactivated", "Deactivated"]


def test_reactivating_someone_whose_role_is_archived_says_why_not(client, cast):
    actions.deactivate_employee(cast.dave, by=cast.sam)
    actions.archive_role(cast.dave.role, by=cast.sam)
    login(client, cast.alice)
    response = client.post(reverse("web:employee-reactivate", args=[cast.dave.pk]), follow=True)
    assert "Their role is archived; give them another role first." in text(response)
    assert not Employee.objects.get(pk=cast.dave.pk).is_active


def test_an_admin_sends_a_set_password_link(client, cast):
    login(client, cast.alice)
    response = client.post(reverse("web:employee-send-link", args=[cast.bob.pk]), follow=True)
    assert "We e-mailed bob@acme.test a link to choose a password." in text(response)
    assert mail.outbox[0].to == ["bob@acme.test"] and "/account/set-password/" in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="employee.password_link_sent", object_id=str(cast.bob.pk)).exists()


def test_no_link_is_sent_to_a_deactivated_employee(client, cast):
    actions.deactivate_employee(cast.bob, by=cast.alice)
    login(client, cast.alice)
    response = client.post(reverse("web:employee-send-link", args=[cast.bob.pk]), follow=True)
    assert "That employee is deactivated." in text(response) and mail.outbox == []


# --- Teams ------------------------------------------------------------------------------------------------------


def test_the_team_list_counts_active_members(client, cast):
    actions.update_team(cast.sales, by=cast.alice, members=[cast.bob, cast.dave, cast.erin])
    actions.deactivate_employee(cast.dave, by=cast.sam)
    login(client, cast.alice)
    response = client.get(reverse("web:teams"))
    assert {t.name: t.member_count for t in response.context["teams"]} == {"Sales": 2, "Support": 1}
    assert "2 members" in text(response) and "1 member" in text(response)


def test_the_team_list_query_count_does_not_grow_with_rows(client, cast):
    login(client, cast.alice)
    url = reverse("web:teams")
    client.get(url)
    few = count_queries(lambda: client.get(url))
    for i in range(10):
        actions.create_team(by=cast.alice, name=f"Team {i}", members=[cast.bob, cast.erin])
    assert count_queries(lambda: client.get(url)) == few


def test_an_admin_creates_a_team(client, cast):
    login(client, cast.alice)
    response = client.post(reverse("web:teams"), {"name": " Night  shift "})
    team = Team.objects.get(company=cast.acme, name="Night shift")
    assert response.status_code == 302 and response.url == reverse("web:team", args=[team.pk])
    assert "Team Night shift is created." in text(client.get(response.url))


@pytest.mark.parametrize(
    ("name", "message"), [("sales", "A team named sales already exists."), ("", "The name can't be empty.")]
)
def test_a_team_with_a_bad_name_is_refused(client, cast, name, message):
    login(client, cast.alice)
    count, audits = Team.objects.count(), audit_count()
    response = client.post(reverse("web:teams"), {"name": name})
    assert response.status_code == 200 and message in text(response)
    assert Team.objects.count() == count and audit_count() == audits


def test_an_admin_renames_a_team_and_chooses_its_members(client, cast):
    actions.update_team(cast.sales, by=cast.alice, members=[cast.bob, cast.dave])
    actions.deactivate_employee(cast.dave, by=cast.sam)
    login(client, cast.alice)
    url = reverse("web:team", args=[cast.sales.pk])
    page = client.get(url)
    assert page.context["form"]["members"].value() == [cast.bob.pk]  # ticked: the active members
    offered = list(page.context["form"].fields["members"].queryset)
    assert cast.dave not in offered and cast.erin in offered  # only active employees are offered
    assert "Also in this team, deactivated: Dave" in text(page)
    response = client.post(url, {"name": "Sales EU", "members": [cast.erin.pk, cast.alice.pk]})
    assert response.status_code == 302
    cast.sales.refresh_from_db()
    # Bob is unticked; Dave, deactivated and not offered, stays where he was.
    assert cast.sales.name == "Sales EU"
    assert set(cast.sales.members.all()) == {cast.erin, cast.alice, cast.dave}


def test_another_companys_employee_cannot_be_made_a_member(client, cast):
    login(client, cast.alice)
    audits = audit_count()
    response = client.post(reverse("web:team", args=[cast.sales.pk]), {"name": "Sales", "members": [cast.carol.pk]})
    assert response.status_code == 200 and "Select a valid choice." in text(response)
    assert list(cast.sales.members.all()) == [cast.bob] and audit_count() == audits


def test_renaming_a_team_to_a_taken_name_is_refused(client, cast):
    login(client, cast.alice)
    response = client.post(reverse("web:team", args=[cast.sales.pk]), {"name": "Support", "members": [cast.bob.pk]})
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == ["A team named Support already exists."]
    assert Team.objects.get(pk=cast.sales.pk).name == "Sales"


# --- Roles ------------------------------------------------------------------------------------------------------


def test_the_role_list_shows_built_in_roles_holders_and_archived_roles_apart(client, cast):
    temp = actions.create_role(by=cast.sam, name="Temp", permissions=["reply"], scope="assigned")
    actions.archive_role(temp, by=cast.sam)
    login(client, cast.sam)
    response = client.get(reverse("web:roles"))
    holders = {r.name: r.holder_count for r in response.context["roles"]}
    assert holders == {"Admin": 1, "Agent": 2, "Assigned only": 1, "Super-admin": 1}
    assert [r.name for r in response.context["archived_roles"]] == ["Temp"]
    page = response.content.decode()
    assert page.count('data-testid="role-row"') == 4 and page.count('data-testid="archived-role-row"') == 1
    assert "built-in" in page


def test_the_role_list_query_count_does_not_grow_with_rows(client, cast):
    login(client, cast.sam)
    url = reverse("web:roles")
    client.get(url)
    few = count_queries(lambda: client.get(url))
    for i in range(8):
        role = actions.create_role(by=cast.sam, name=f"Role {i}", permissions=["reply"], scope="teams")
        if i % 2:
            actions.archive_role(role, by=cast.sam)
    assert count_queries(lambda: client.get(url)) == few


def test_the_role_editor_lays_out_every_permission_and_scope(client, cast):
    login(client, cast.sam)
    response = client.get(reverse("web:role", args=[cast.bob.role.pk]))
    ticked = {p["value"] for g in response.context["permission_groups"] for p in g["perms"] if p["checked"]}
    shown = [p["value"] for g in response.context["permission_groups"] for p in g["perms"]]
    assert ticked == set(cast.bob.role.permissions)
    assert sorted(shown) == sorted(Perm.values)
    assert [s["value"] for s in response.context["scopes"] if s["checked"]] == ["teams"]
    page = text(response)
    assert "Reply to customers" in page and "Sees the queues of the teams they belong to" in page
    assert 'href="{}"'.format(reverse("web:employee", args=[cast.bob.pk])) in response.content.decode()


def test_a_super_admin_creates_a_role(client, cast):
    login(client, cast.sam)
    response = client.post(
        reverse("web:role-add"), {"name": "Night shift", "scope": "teams", "permissions": ["reply", "snooze"]}
    )
    role = Role.objects.get(company=cast.acme, name="Night shift")
    assert response.status_code == 302 and response.url == reverse("web:role", args=[role.pk])
    assert role_row(role) == ("Night shift", Scope.TEAMS, ["reply", "snooze"], False)
    assert "Role Night shift is created." in text(client.get(response.url))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Forged", "scope": "teams", "permissions": ["reply", "fly"]}, "Unknown permission: fly."),
        ({"name": " ", "scope": "teams", "permissions": ["reply"]}, "The name can't be empty."),
        ({"name": "AGENT", "scope": "teams", "permissions": []}, "A role named AGENT already exists."),
        ({"name": "Wide", "scope": "everything", "permissions": []}, "Unknown conversation access: everything."),
    ],
)
def test_a_bad_new_role_is_refused_with_the_actions_message(client, cast, data, message):
    login(client, cast.sam)
    count, audits = Role.objects.count(), audit_count()
    response = client.post(reverse("web:role-add"), data)
    assert response.status_code == 200 and message in text(response)
    assert Role.objects.count() == count and audit_count() == audits
    # What was ticked stays ticked, so nothing has to be done twice.
    ticked = {p["value"] for g in response.context["permission_groups"] for p in g["perms"] if p["checked"]}
    assert ticked == set(data["permissions"]) - {"fly"}


def test_a_super_admin_edits_a_role(client, cast):
    role = Role.objects.get(name="Assigned only")
    login(client, cast.sam)
    url = reverse("web:role", args=[role.pk])
    response = client.post(url, {"name": "Trainee", "scope": "teams", "permissions": ["reply", "add_notes"]})
    assert response.status_code == 302 and response.url == url
    assert role_row(role) == ("Trainee", "teams", ["add_notes", "reply"], False)
    assert "Saved." in text(client.get(url))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Admin", "scope": "teams", "permissions": ["reply"]}, "A role named Admin already exists."),
        ({"name": "", "scope": "teams", "permissions": ["reply"]}, "The name can't be empty."),
        ({"name": "X", "scope": "teams", "permissions": ["delete_everything"]}, "Unknown permission"),
    ],
)
def test_a_refused_role_edit_changes_nothing(client, cast, data, message):
    role = Role.objects.get(name="Assigned only")
    login(client, cast.sam)
    before, audits = role_row(role), audit_count()
    response = client.post(reverse("web:role", args=[role.pk]), data)
    assert response.status_code == 200 and message in text(response)
    assert role_row(role) == before and audit_count() == audits


def test_the_editors_own_role_is_read_only(client, cast):
    login(client, cast.sam)
    url = reverse("web:role", args=[cast.sam.role.pk])
    page = client.get(url)
    html_page = page.content.decode()
    assert page.context["own_role"] and 'data-testid="read-only"' in html_page
    assert "You can't edit the role you hold yourself" in text(page)
    assert '<fieldset class="plain" disabled>' in html_page and 'data-testid="archive"' not in html_page
    before = role_row(cast.sam.role)
    response = client.post(url, {"name": "Boss", "scope": "all", "permissions": ["reply"]})
    assert "You can't edit the role you hold yourself." in text(response)
    assert role_row(cast.sam.role) == before


def test_built_in_roles_offer_no_archive_button_and_refuse_a_forged_one(client, cast):
    login(client, cast.sam)
    role = cast.bob.role
    assert 'data-testid="archive"' not in client.get(reverse("web:role", args=[role.pk])).content.decode()
    response = client.post(reverse("web:role-archive", args=[role.pk]), follow=True)
    assert "Built-in roles can't be archived." in text(response) and not role_row(role)[3]


def test_a_role_still_held_is_not_archived(client, cast):
    role = Role.objects.get(name="Assigned only")
    login(client, cast.sam)
    response = client.post(reverse("web:role-archive", args=[role.pk]), follow=True)
    assert "1 active employee holds this role; give them another role first." in text(response)
    assert role_row(role)[3] is False


def test_a_role_is_archived_shown_read_only_and_unarchived(client, cast):
    role = actions.create_role(by=cast.sam, name="Temp", permissions=["reply"], scope="assigned")
    login(client, cast.sam)
    url = reverse("web:role", args=[role.pk])
    assert 'data-testid="archive"' in client.get(url).content.decode()
    response = client.post(reverse("web:role-archive", args=[role.pk]), follow=True)
    assert "Role Temp is archived." in text(response) and role_row(role)[3] is True
    assert 'data-testid="read-only"' in response.content.decode()
    assert 'data-testid="unarchive"' in response.content.decode()
    response = client.post(reverse("web:role-unarchive", args=[role.pk]), follow=True)
    assert "Role Temp can be given again." in text(response) and role_row(role)[3] is False
