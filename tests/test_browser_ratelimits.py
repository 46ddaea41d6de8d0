"""The widget in a real Chromium meets a rate limit: it says "slow down" and lets the visitor retry."""

from __future__ import annotations

import pytest

from helpdesk.accounts import services
from helpdesk.conversations.models import Message
from tests.test_browser import (  # noqa: F401 (fixtures)
    CUSTOMER_PAGE,
    TIMEOUT_MS,
    CustomerSite,
    browser,
    orm,
    server,
    widget_ready,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_visitor_over_the_limit_is_told_to_slow_down_and_can_retry(tcast, server, browser, settings):  # noqa: F811
    settings.RATE_LIMIT_WIDGET_MESSAGES_PER_VISITOR = "2/3 seconds"
    with CustomerSite() as site:
        channel = orm(
            services.create_widget_channel,
            company=tcast.acme,
            name="Shop",
            team=tcast.sales,
            allowed_origins=[site.origin],
        )
        # A Russian page: the widget speaks its page's language, whatever the server's.
        site.html = CUSTOMER_PAGE.format(server=server.url, key=channel.public_key).replace('lang="en"', 'lang="ru"')
        page = browser.new_context().new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(site.origin + "/")
        assert widget_ready(page) is True
        page.get_by_test_id("sc-launcher").click()
        for text in ("One", "Two", "Three"):
            page.get_by_test_id("sc-input").fill(text)
            page.get_by_test_id("sc-input").press("Enter")

        failed = page.locator(".msg.failed")
        failed.wait_for()
        notice = page.get_by_test_id("sc-error")
        assert "Не так быстро" in notice.inner_text()
        assert "Не так быстро" in failed.inner_text()
        assert orm(lambda: sorted(Message.objects.filter(channel=channel).values_list("body", flat=True))) == [
            "One",
            "Two",
        ]

        # A tap on the bubble sends it again once the window has passed.
        page.wait_for_timeout(3100)
        failed.click()
        page.wait_for_function(
            "() => !document.querySelector('#smartchat-widget-host').shadowRoot"
            ".querySelector('.msg.pending, .msg.failed')"
        )
    assert orm(lambda: Message.objects.filter(channel=channel, body="Three").count()) == 1


def test_a_refused_session_start_waits_for_retry_after_and_tries_again(tcast, server, browser, settings):  # noqa: F811
    settings.RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS = "1/3 seconds"
    with CustomerSite() as site:
        channel = orm(
            services.create_widget_channel,
            company=tcast.acme,
            name="Shop",
            team=tcast.sales,
            allowed_origins=[site.origin],
        )
        site.html = CUSTOMER_PAGE.format(server=server.url, key=channel.public_key)
        first = browser.new_context().new_page()
        first.goto(site.origin + "/")
        assert widget_ready(first) is True
        # A second new visitor from the same address, at once: refused, told so, and retried.
        second = browser.new_context().new_page()
        second.set_default_timeout(TIMEOUT_MS)
        second.goto(site.origin + "/")
        second.get_by_test_id("sc-launcher").click()
        second.get_by_test_id("sc-error").get_by_text("Not so fast").wait_for()
        assert widget_ready(second) is True
        second.get_by_test_id("sc-input").fill("Made it")
        second.get_by_test_id("sc-input").press("Enter")
        second.wait_for_function(
            "() => !document.querySelector('#smartchat-widget-host').shadowRoot.querySelector('.msg.pending')"
        )
    assert orm(lambda: Message.objects.filter(channel=channel, body="Made it").count()) == 1
