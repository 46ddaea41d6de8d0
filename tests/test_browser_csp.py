"""The Content-Security-Policy in a real Chromium: every page loads with no violation, and works.

Chromium reports each blocked script, style, socket or image twice: as a console error and as a
`securitypolicyviolation` event. Both are collected from the first byte of every page (an init
script, which the page's own policy does not govern) and must stay empty, while the pages do
what they are for: the inbox goes live over its socket, menus send themselves, confirmations
ask, copy buttons copy, the API docs draw the schema, the demo site's widget is styled and chats.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from helpdesk.accounts import services
from helpdesk.conversations import canned
from helpdesk.conversations.models import Channel
from tests.conftest import PASSWORD
from tests.test_browser import TIMEOUT_MS, CustomerSite, browser, orm, server, widget_ready  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.sourceFile + ":" + e.lineNumber;
  window.__csp.push(e.effectiveDirective + " blocked " + (e.blockedURI || "inline") + " at " + where);
}, true);
"""


class Watched:
    """A page whose CSP violations are collected, from console errors and from DOM events."""

    def __init__(self, browser, **context) -> None:  # noqa: F811
        self.context = browser.new_context(locale="en-GB", **context)
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.console: list[str] = []
        self.page.on(
            "console",
            lambda message: (
                self.console.append(message.text)
                if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text
                else None
            ),
        )
        self.events: list[str] = []

    def collect(self) -> None:
        """Take the current document's events (they are lost when it navigates away)."""
        self.events += self.page.evaluate("() => window.__csp || []")

    def goto(self, url: str, *, ours: bool = True) -> None:
        self.collect()
        response = self.page.goto(url)
        if not ours:
            return
        # The page is under our policy at all (without one, nothing would ever be a violation).
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, (url, policy)

    def violations(self) -> list[str]:
        self.collect()
        return self.console + self.events


def sign_in(watched: Watched, server, email: str) -> None:  # noqa: F811
    page = watched.page
    watched.goto(server.url + "/login/")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", PASSWORD)
    watched.collect()
    page.click("button[type=submit]")
    page.wait_for_url("**/inbox/**")


def test_the_agent_pages_work_with_no_violation(tcast, server, browser):  # noqa: F811
    orm(canned.create_canned_response, by=tcast.sam, shortcut="bye", title="Bye", body="Bye!", company_wide=True)
    sam = Watched(browser, permissions=["clipboard-read", "clipboard-write"])
    page = sam.page
    sign_in(sam, server, "sam@acme.test")

    # The inbox goes live over its websocket ('self' in connect-src covers ws: of the same host).
    page.wait_for_selector("body[data-live=yes]")
    page.get_by_test_id("view-unassigned").click()
    page.get_by_test_id("conversation-row").first.click()
    page.get_by_test_id("thread").get_by_text("Hello, is my order shipped?").wait_for()
    # The presence menu sends itself when changed (it was an inline onchange).
    page.get_by_test_id("presence").select_option("away")
    page.wait_for_selector("[data-presence-dot][data-presence=away]")
    assert orm(lambda: type(tcast.sam).objects.get(pk=tcast.sam.pk).presence) == "away"

    # Every settings section the super-admin has.
    watched_pages = []
    sam.goto(server.url + "/settings/company/")
    for href in page.locator(".settings-nav a").evaluate_all("links => links.map(a => a.href)"):
        sam.goto(href)
        page.locator("h1").first.wait_for()
        watched_pages.append(href)
    assert len(watched_pages) >= 10, watched_pages

    # Search finds the visitor's message.
    sam.goto(server.url + "/search/?q=shipped")
    page.get_by_text("Hello, is my order shipped?").first.wait_for()

    # Two-factor: the QR code is drawn.
    sam.goto(server.url + "/settings/two-factor/")
    assert page.get_by_test_id("2fa-qr").locator("svg").bounding_box()["width"] > 50

    # A Telegram channel's deep link: its QR code (an image from 'self') is drawn.
    bot = orm(
        Channel.objects.create,
        company=tcast.acme,
        kind="telegram",
        name="Acme bot",
        settings={"mode": "polling", "bot_username": "acme_help_bot"},
    )
    sam.goto(f"{server.url}/settings/channels/{bot.pk}/?start=flyer")
    qr = page.get_by_test_id("channel-link").last.locator("img.qr")
    page.wait_for_function("img => img.complete && img.naturalWidth > 50", arg=qr.element_handle())
    assert "start=flyer" in qr.get_attribute("src")

    # A confirmation asks first: "Cancel" keeps the canned response, "OK" archives it.
    sam.goto(server.url + "/settings/canned-responses/")
    row = page.locator("tr", has_text="/bye")
    answers = []

    def answer(dialog):
        answers.append(dialog.message)
        dialog.dismiss() if len(answers) == 1 else dialog.accept()

    page.on("dialog", answer)
    row.get_by_role("button", name="Archive").click()
    page.wait_for_timeout(300)
    assert answers and row.count() == 1
    with page.expect_navigation():
        row.get_by_role("button", name="Archive").click()
    assert len(answers) == 2 and "Archive this canned response?" in answers[0]
    assert page.locator("tr", has_text="/bye").count() == 0

    # A copy button copies (it was an inline onclick).
    sam.goto(server.url + "/settings/api-tokens/")
    page.get_by_label("Name").fill("CRM")
    page.get_by_role("button", name=re.compile("Create")).click()
    key = page.get_by_test_id("new-key").inner_text()
    copy = page.get_by_test_id("new-token").get_by_role("button", name="Copy")
    copy.click()
    page.get_by_test_id("new-token").get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == key

    # The language menu sends itself too.
    sam.goto(server.url + "/inbox/")
    page.get_by_label("Language").select_option("ru")
    page.wait_for_selector("html[lang=ru]")

    assert sam.violations() == []


def test_the_api_docs_draw_the_schema_with_no_violation(tcast, server, browser):  # noqa: F811
    sam = Watched(browser)
    sign_in(sam, server, "sam@acme.test")
    sam.goto(server.url + "/api/docs/")
    sam.page.locator(".swagger-ui .info .title", has_text="Smartchat API").wait_for()
    sam.page.locator(".opblock").first.wait_for()
    assert sam.page.locator(".opblock").count() > 10
    assert sam.violations() == []


def test_the_demo_site_widget_is_styled_and_chats_with_no_violation(transactional_db, server, browser):  # noqa: F811
    orm(call_command, "seed_demo", "--base-url", server.url, stdout=open("/dev/null", "w"))
    visitor = Watched(browser)
    page = visitor.page
    visitor.goto(server.url + "/demo/")
    assert re.search(r"/demo/[\w-]+/$", page.url)
    assert widget_ready(page) is True
    launcher = page.get_by_test_id("sc-launcher")
    # The shadow root's styles apply: a round, fixed, coloured bubble.
    assert launcher.evaluate("e => getComputedStyle(e).position") == "fixed"
    assert launcher.evaluate("e => getComputedStyle(e).borderRadius") == "50%"
    assert launcher.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(79, 70, 229)"
    # The page's own stylesheet applies too.
    assert page.locator("main").evaluate("e => getComputedStyle(e).maxWidth") == "720px"
    launcher.click()
    page.get_by_test_id("sc-input").fill("Hello from the demo")
    page.get_by_test_id("sc-send").click()
    page.wait_for_function(
        "() => { const r = document.querySelector('#smartchat-widget-host').shadowRoot;"
        " return r.querySelector('.msg[data-from=visitor]') && !r.querySelector('.msg.pending'); }"
    )
    assert visitor.violations() == []


def test_the_widget_is_styled_on_a_customer_site_with_a_strict_policy(tcast, server, browser):  # noqa: F811
    with CustomerSite() as site:  # the policy here is the site's, not ours
        channel = orm(
            services.create_widget_channel, company=tcast.acme, name="Strict shop", allowed_origins=[site.origin]
        )
        ws = server.url.replace("http://", "ws://")
        # The customer's own policy: our script and our server, and no inline styles at all.
        site.headers = {
            "Content-Security-Policy": f"default-src 'none'; script-src {server.url}; "
            f"connect-src {server.url} {ws}; style-src 'self'; img-src 'self'"
        }
        site.html = (
            f'<!doctype html><html lang="en"><head><title>Shop</title></head><body><h1>Shop</h1>'
            f'<script src="{server.url}/static/widget/smartchat-widget.js" data-channel="{channel.public_key}" async>'
            f"</script></body></html>"
        )
        visitor = Watched(browser)
        visitor.goto(site.origin + "/", ours=False)
        assert widget_ready(visitor.page) is True
        launcher = visitor.page.get_by_test_id("sc-launcher")
        assert launcher.evaluate("e => getComputedStyle(e).position") == "fixed"
        assert launcher.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(79, 70, 229)"
        assert visitor.violations() == []


def test_the_django_admin_works_with_no_violation(tcast, server, browser):  # noqa: F811
    orm(get_user_model().objects.create_superuser, "operator", "operator@example.test", PASSWORD)
    operator = Watched(browser)
    page = operator.page
    operator.goto(server.url + "/admin/login/")
    page.fill("input[name=username]", "operator")
    page.fill("input[name=password]", PASSWORD)
    operator.collect()
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    operator.goto(server.url + "/admin/accounts/company/")
    page.get_by_role("link", name="Acme").click()
    page.wait_for_url(re.compile(r"/admin/accounts/company/\d+/change/"))
    operator.goto(server.url + f"/admin/accounts/employee/{tcast.bob.pk}/change/")
    page.locator("form").first.wait_for()
    assert operator.violations() == []
