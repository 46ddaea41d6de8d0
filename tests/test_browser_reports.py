"""In a real Chromium: an admin opens Reports, changes the period, sees the live queue move over
the socket, switches a chart to its table, clicks a heatmap cell and lands on those conversations;
the Russian page renders. No Content-Security-Policy violation anywhere."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from helpdesk.conversations import actions
from tests.test_browser import ARTIFACTS, browser, orm, server  # noqa: F401
from tests.test_browser_csp import Watched, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_admin_reads_reports_and_lands_on_a_cells_conversations(tcast, server, browser):  # noqa: F811
    alice = Watched(browser)
    page = alice.page
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(alice, server, "alice@acme.test")
    page.get_by_test_id("nav-reports").click()
    page.wait_for_url("**/reports/")
    page.wait_for_selector("body[data-reports-live=yes]")
    assert page.locator("[data-tile=opened]").get_attribute("data-value") == "1"

    # Charts are drawn by Chart.js from the project's static files; each has its table.
    by_hour = page.locator("[data-chart=by_hour]")
    assert by_hour.get_attribute("data-mode") == "chart"
    assert by_hour.locator("canvas").bounding_box()["height"] > 100
    assert not page.get_by_test_id("by-hour-table").is_visible()
    by_hour.locator("[data-chart-toggle]").click()
    assert page.get_by_test_id("by-hour-table").is_visible() and not by_hour.locator("canvas").is_visible()

    # The period: a preset reloads with it; the custom range waits for its dates.
    page.get_by_test_id("period").select_option("30d")
    page.wait_for_url("**/reports/?period=30d**")
    assert page.get_by_test_id("by-day-table").locator("tbody tr").count() == 30
    page.get_by_test_id("period").select_option("custom")
    assert page.get_by_test_id("start").is_visible()
    page.get_by_test_id("period").select_option("7d")
    page.wait_for_url("**period=7d**")
    page.wait_for_selector("body[data-reports-live=yes]")

    # The live queue moves when a customer writes, without reloading the page.
    waiting = page.locator("[data-live=waiting] [data-value]")
    assert waiting.inner_text() == "1"
    orm(
        actions.receive_message,
        channel=tcast.widget,
        external_contact_id="visitor-9",
        body="Anyone?",
        external_id="w:9",
    )
    page.wait_for_function("() => document.querySelector('[data-live=waiting] [data-value]').textContent === '2'")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reports.png"), full_page=True)

    # The heatmap cell of the first conversation lists it; its link opens it in the inbox.
    created = tcast.conversation.created_at.astimezone(ZoneInfo(tcast.acme.timezone))
    cell = page.locator(f"td[data-weekday='{created.weekday()}'][data-hour='{created.hour}'] a")
    cell.click()
    page.wait_for_url("**/reports/heatmap/cell/**")
    rows = page.get_by_test_id("cell-conversation")
    assert rows.count() >= 1
    page.locator(f"[data-conversation='{tcast.conversation.pk}'] a").click()
    page.wait_for_url(f"**/inbox/{tcast.conversation.pk}/**")
    page.get_by_test_id("thread").get_by_text("Hello, is my order shipped?").wait_for()
    assert errors == [] and alice.violations() == []


def test_the_russian_reports_page_renders(tcast, server, browser):  # noqa: F811
    alice = Watched(browser)
    page = alice.page
    sign_in(alice, server, "alice@acme.test")
    alice.goto(server.url + "/reports/")
    page.locator("select[name=language]").select_option("ru")
    page.wait_for_url("**/reports/**")
    page.wait_for_selector("html[lang=ru]")
    page.wait_for_selector("[data-chart=by_day][data-mode=chart]")
    assert page.get_by_test_id("heatmap-table").locator("tbody tr").count() == 7
    assert page.locator("h1").inner_text() == "Статистика"
    assert page.get_by_test_id("period").locator("option:checked").inner_text() == "Последние 7 дней"
    assert alice.violations() == []
