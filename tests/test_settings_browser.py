"""The administration flow in a real Chromium: a new role, a new employee, their first sign-in.

The super-admin creates a role with the editor; an admin adds a colleague with that role and
a team; the colleague follows the e-mailed link, chooses a password and lands in the inbox.
"""

from __future__ import annotations

import re

import pytest

from helpdesk.accounts.models import Employee
from tests.conftest import PASSWORD
from tests.test_browser import ARTIFACTS, TIMEOUT_MS, browser, orm, server  # noqa: F401  (shared fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "Orbit-Lantern-42"


def sign_in(browser, server, email: str, password: str = PASSWORD):  # noqa: F811
    page = browser.new_context(locale="en-GB").new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url + "/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/inbox/**")
    return page


def test_a_new_role_and_a_new_colleague_end_to_end(tcast, server, browser, settings, mailoutbox):  # noqa: F811
    # The live server runs in a thread of this process: the locmem outbox sees its e-mails.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PUBLIC_URL = ""  # links point at the address the admin used, i.e. the test server

    # The super-admin opens the settings and creates a role with the editor.
    sam = sign_in(browser, server, "sam@acme.test")
    sam.get_by_test_id("nav-settings").click()
    sam.get_by_role("link", name="Roles").click()
    sam.get_by_test_id("add-role").click()
    sam.get_by_label("Role name").fill("Night shift")
    sam.get_by_text("Conversations of the employee's teams").click()
    for permission in ("Reply to customers", "Add internal notes", "Snooze conversations"):
        sam.get_by_label(permission).check()
    sam.get_by_role("button", name="Create role").click()
    sam.wait_for_url(re.compile(r"/settings/roles/\d+/$"))
    assert "Role Night shift is created." in sam.locator(".flash").inner_text()
    assert sam.get_by_label("Snooze conversations").is_checked()
    assert not sam.get_by_label("Resolve and reopen conversations").is_checked()

    # An admin adds a colleague with that role, in Sales.
    alice = sign_in(browser, server, "alice@acme.test")
    alice.get_by_test_id("nav-settings").click()
    alice.get_by_role("link", name="Employees").click()
    alice.get_by_test_id("add-employee").click()
    alice.get_by_label("E-mail").fill("nina@acme.test")
    alice.get_by_label("Name").fill("Nina")
    alice.get_by_label("Role").select_option(label="Night shift")
    alice.get_by_label("Sales").check()
    alice.get_by_label("Capacity").fill("5")
    alice.get_by_role("button", name="Add and send the invitation").click()
    alice.wait_for_url(re.compile(r"/settings/employees/\d+/$"))
    assert "We e-mailed nina@acme.test a link" in alice.locator(".flash").inner_text()
    alice.get_by_role("link", name="Employees").first.click()
    row = alice.get_by_test_id("employee-row").filter(has_text="nina@acme.test")
    assert "Night shift" in row.inner_text() and "Sales" in row.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "e2e-employees.png"), full_page=True)

    nina = orm(lambda: Employee.objects.select_related("role").get(user__email="nina@acme.test"))
    assert (nina.role.name, nina.capacity) == ("Night shift", 5)
    assert orm(lambda: list(nina.teams.values_list("name", flat=True))) == ["Sales"]

    # The colleague follows the e-mailed link, chooses a password and signs in.
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["nina@acme.test"]
    link = re.search(r"http://\S+/account/set-password/\S+", mailoutbox[0].body).group(0)
    assert link.startswith(server.url)
    newcomer = browser.new_context(locale="en-GB").new_page()
    newcomer.set_default_timeout(TIMEOUT_MS)
    newcomer.goto(link)
    newcomer.fill("input[name=new_password1]", NEW_PASSWORD)
    newcomer.fill("input[name=new_password2]", NEW_PASSWORD)
    newcomer.click("button[type=submit]")
    newcomer.wait_for_url("**/set-password/done/")
    inbox = sign_in(browser, server, "nina@acme.test", NEW_PASSWORD)
    assert "Night shift" in inbox.locator(".me").inner_text()
    # The role opens no administration: her settings are her own canned responses, API keys and sign-in.
    inbox.get_by_test_id("nav-settings").click()
    assert inbox.locator(".settings-nav a").all_inner_texts() == [
        "Canned responses",
        "API tokens",
        "Two-factor sign-in",
    ]
