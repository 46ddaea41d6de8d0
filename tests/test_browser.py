"""End to end in a real Chromium: a visitor on a customer's site, an agent in the inbox.

The customer's page is served by a separate little HTTP server on another port, so the
widget runs cross-origin exactly as it does on a real company's site. Smartchat itself
is the real ASGI app under uvicorn.
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection

from helpdesk.accounts import services
from helpdesk.accounts.models import AssignmentMethod, Team
from helpdesk.conversations.models import Message
from tests.conftest import PASSWORD
from tests.live import LiveServer, free_port

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 10_000
ARTIFACTS = Path(os.environ.get("SMARTCHAT_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / ".data"))

CUSTOMER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme shop</title>
<style>body {{ font-family: serif; background: #fafafa; }} .msg {{ color: red; }}</style></head>
<body><h1>Acme shop</h1><p class="msg">The host page's CSS must not leak into the widget.</p>
<script src="{server}/static/widget/smartchat-widget.js" data-channel="{key}" async></script>
</body></html>"""


def _need_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


class CustomerSite:
    """A stand-in for a company's own website, on its own origin."""

    def __init__(self) -> None:
        self.html = ""
        self.headers: dict[str, str] = {}  # e.g. the site's own Content-Security-Policy
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = site.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in site.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        # "localhost" vs the app's "127.0.0.1": a different origin, as on a real site.
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> CustomerSite:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def orm(fn, /, *args, **kwargs):
    """Run ORM code beside Playwright: in a thread of its own, with its connection closed.

    Playwright's sync API keeps an event loop in the test's thread, so Django would give
    code here a connection in a context nobody closes, and the test database could not
    be dropped afterwards.
    """

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def widget_ready(page) -> bool:
    """Wait for the widget's session to start; True if it did, False if it was refused."""
    page.wait_for_function("() => window.Smartchat && window.Smartchat.ready")
    return page.evaluate("() => window.Smartchat.ready")


@pytest.fixture
def browser(monkeypatch) -> Iterator:
    _need_chromium()
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code, so Django's async guard does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def server(transactional_db, settings) -> Iterator[LiveServer]:
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    live = LiveServer().start()
    yield live
    live.stop()


def test_a_visitor_and_an_agent_chat_live_across_origins(tcast, server, browser):
    with CustomerSite() as site:
        channel = orm(
            services.create_widget_channel,
            company=tcast.acme,
            name="Acme shop",
            team=tcast.sales,
            allowed_origins=[site.origin],
        )
        site.html = CUSTOMER_PAGE.format(server=server.url, key=channel.public_key)
        # Sales hands out its chats by hand here, so they wait in its queue for Bob to pick
        # (automatic assignment has its own test in test_browser_assignment.py).
        orm(Team.objects.filter(pk=tcast.sales.pk).update, assignment_method=AssignmentMethod.MANUAL)

        # The visitor opens the customer's site and writes in the widget.
        visitor = browser.new_context().new_page()
        visitor.set_default_timeout(TIMEOUT_MS)
        visitor.goto(site.origin + "/")
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()
        panel = visitor.get_by_test_id("sc-panel")
        assert panel.is_visible()
        # The host page's red `.msg` rule stops at the shadow root.
        assert visitor.get_by_test_id("sc-status").evaluate("e => getComputedStyle(e).color") != "rgb(255, 0, 0)"

        # The agent signs in through the real form and opens the inbox.
        agent = browser.new_context().new_page()
        agent.set_default_timeout(TIMEOUT_MS)
        agent.goto(server.url + "/login/")
        agent.fill("input[name=username]", tcast.bob.user.username)
        agent.fill("input[name=password]", PASSWORD)
        agent.click("button[type=submit]")
        agent.wait_for_url("**/inbox/**")
        # New chats from the widget land unassigned in the team's queue.
        agent.get_by_test_id("view-unassigned").click()
        agent.wait_for_url("**view=unassigned**")
        rows = agent.get_by_test_id("conversation-row")
        rows.first.wait_for()
        before = rows.count()
        # Once live, the catch-up window has been re-sent: what the page showed is not counted twice.
        agent.wait_for_selector("body[data-live=yes]")
        earlier = rows.filter(has_text="Hello, is my order shipped?")
        assert earlier.get_by_test_id("unread").inner_text() == "1"

        visitor.get_by_test_id("sc-input").fill("Where is my parcel #4521?")
        visitor.get_by_test_id("sc-send").click()
        sent = visitor.locator("[data-testid=sc-message][data-from=visitor]")
        sent.last.wait_for()
        assert sent.last.inner_text().startswith("Where is my parcel #4521?")
        visitor.wait_for_function(
            "() => !document.querySelector('#smartchat-widget-host').shadowRoot.querySelector('.msg.pending')"
        )

        # It appears in the agent's list live, without a reload.
        new_row = agent.get_by_test_id("conversation-row").filter(has_text="Where is my parcel #4521?")
        new_row.wait_for()
        assert rows.count() == before + 1
        new_row.click()
        thread = agent.get_by_test_id("thread")
        thread.get_by_text("Where is my parcel #4521?").wait_for()

        agent.get_by_test_id("composer-input").fill("It left our warehouse this morning.")
        agent.get_by_test_id("send").click()

        # The visitor sees the reply live, signed by the agent.
        reply = visitor.locator("[data-testid=sc-message][data-from=agent]")
        reply.filter(has_text="It left our warehouse this morning.").wait_for()
        assert "Bob" in reply.last.inner_text()
        # The inbox sent it with an Idempotency-Key of its own (a UUID), stored with the reply.
        sent = Message.objects.get(body="It left our warehouse this morning.")
        assert sent.idempotency_key and len(sent.idempotency_key) in (32, 36)

        # The agent's next message arrives live in the open conversation too.
        visitor.get_by_test_id("sc-input").fill("Thank you!")
        visitor.get_by_test_id("sc-input").press("Enter")
        thread.get_by_text("Thank you!").wait_for()

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        agent.screenshot(path=str(ARTIFACTS / "e2e-inbox.png"), full_page=True)
        visitor.screenshot(path=str(ARTIFACTS / "e2e-widget.png"))

        # After a reload the visitor's conversation is still there (the token survived).
        visitor.reload()
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()
        history = visitor.locator("[data-testid=sc-message]")
        history.filter(has_text="It left our warehouse this morning.").wait_for()
        assert history.count() == 3


def test_the_widget_refuses_a_site_that_is_not_allowed(tcast, server, browser):
    with CustomerSite() as site:
        channel = orm(
            services.create_widget_channel,
            company=tcast.acme,
            name="Acme shop",
            allowed_origins=["https://somewhere-else.test"],
        )
        site.html = CUSTOMER_PAGE.format(server=server.url, key=channel.public_key)
        page = browser.new_context().new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(site.origin + "/")
        assert widget_ready(page) is False
        page.get_by_test_id("sc-launcher").click()
        assert page.get_by_test_id("sc-send").is_disabled()
    assert not orm(Message.objects.filter(channel=channel).exists)
