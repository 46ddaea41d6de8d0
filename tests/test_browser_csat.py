"""CSAT in a real Chromium: the visitor is asked inline once the agent resolves, rates 5 with a
comment, and the agent sees the rating in the thread and on the contact, live."""

from __future__ import annotations

import pytest

from helpdesk.accounts import actions as account_actions
from helpdesk.accounts import services
from helpdesk.conversations import actions
from helpdesk.conversations.models import Conversation, Rating
from tests.test_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    CUSTOMER_PAGE,
    CustomerSite,
    browser,
    orm,
    server,
    widget_ready,
)
from tests.test_browser_assignment import signed_in
from tests.test_browser_flow import watched, write_in_widget

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_visitor_rates_inline_after_the_agent_resolves_and_the_agent_sees_it(tcast, server, browser):  # noqa: F811
    with CustomerSite() as site:
        channel = orm(
            services.create_widget_channel,
            company=tcast.acme,
            name="Acme shop",
            team=tcast.sales,
            allowed_origins=[site.origin],
        )
        orm(account_actions.update_channel, channel, by=tcast.alice, csat=True)
        site.html = CUSTOMER_PAGE.format(server=server.url, key=channel.public_key)

        visitor = watched(browser.new_context().new_page())
        visitor.goto(site.origin + "/")
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()
        write_in_widget(visitor, "Can I change my delivery address?")
        conversation = orm(Conversation.objects.get, channel=channel)
        orm(actions.assign, conversation, by=tcast.alice, assignee=tcast.bob)

        bob = signed_in(browser, server, tcast.bob, f"/inbox/{conversation.pk}/?view=mine&status=open")
        bob.get_by_test_id("message").filter(has_text="Can I change my delivery address?").wait_for()
        assert visitor.get_by_test_id("sc-survey").count() == 0
        bob.locator('[data-action="resolve"]').click()

        # Live, inline, in the visitor's widget.
        survey = visitor.get_by_test_id("sc-survey")
        survey.wait_for()
        assert visitor.get_by_test_id("sc-survey-question").inner_text() == (
            "How would you rate our help with this conversation?"
        )
        # Still open to rating after a reload: it comes back with the history.
        visitor.reload()
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()
        survey.wait_for()
        # Nothing chosen yet: the widget says so and sends nothing.
        visitor.get_by_test_id("sc-survey-send").click()
        assert visitor.get_by_test_id("sc-survey-error").inner_text() == "Choose a rating from 1 to 5."
        visitor.get_by_test_id("sc-star-5").click()
        visitor.get_by_test_id("sc-survey-comment").fill("Fast and friendly <b>thanks</b>")
        visitor.get_by_test_id("sc-survey-send").click()
        visitor.get_by_test_id("sc-survey-thanks").wait_for()
        assert visitor.get_by_test_id("sc-survey-thanks").inner_text() == "Thank you for your rating!"
        assert orm(lambda: list(Rating.objects.values_list("score", "comment"))) == [
            (5, "Fast and friendly <b>thanks</b>")
        ]

        # Bob sees it in the thread, live, as text (never as markup), and on the contact.
        line = bob.get_by_test_id("history-line").filter(has_text="Rated 5/5")
        line.wait_for()
        assert line.locator("span").first.inner_text() == "Rated 5/5: Fast and friendly <b>thanks</b>"
        bob.get_by_test_id("contact-ratings").filter(has_text="5/5").wait_for()

        # After a reload the visitor sees no survey any more (rated), and Bob still sees the line.
        visitor.reload()
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()
        visitor.get_by_test_id("sc-message").first.wait_for()
        assert visitor.get_by_test_id("sc-survey").count() == 0
        bob.reload()
        bob.get_by_test_id("history-line").filter(has_text="Rated 5/5: Fast and friendly").wait_for()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        bob.screenshot(path=str(ARTIFACTS / "e2e-csat-thread.png"))
        assert visitor.js_errors == [] and bob.js_errors == []
