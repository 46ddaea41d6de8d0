"""In a real Chromium: searching from the top bar, and a result opening its conversation."""

from __future__ import annotations

import pytest
from django.db import connection

from helpdesk.conversations import actions
from tests.test_browser import ARTIFACTS, TIMEOUT_MS, browser, orm, server  # noqa: F401
from tests.test_browser_assignment import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_searches_and_lands_on_the_message(tcast, server, browser):  # noqa: F811
    for n in range(30):  # enough to push the match out of view at the top of the thread
        orm(actions.post_reply, tcast.conversation, by=tcast.bob, body=f"Status update {n}: still in the warehouse")
    found = orm(
        actions.post_reply, tcast.conversation, by=tcast.bob, body="Your refund of <15 EUR> was approved yesterday"
    )
    for n in range(30):
        orm(actions.post_reply, tcast.conversation, by=tcast.bob, body=f"Later update {n}")
    page = signed_in(browser, server, tcast.bob)

    # Word forms on PostgreSQL ("refunds" finds "refund"); substrings on SQLite.
    postgres = connection.vendor == "postgresql"
    query = "refunds approve" if postgres else "refund approve"
    # "/" jumps to the search box from anywhere but a text field; typing goes there.
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    page.keyboard.type(query)
    assert page.get_by_test_id("topbar-search").input_value() == query
    page.keyboard.press("Enter")
    page.wait_for_url("**/search/?q=" + query.replace(" ", "+"))
    hits = page.get_by_test_id("message-hit")
    assert hits.count() == 1
    snippet = hits.first.get_by_test_id("snippet")
    assert snippet.inner_text() == "Your refund of <15 EUR> was approved yesterday"
    marks = snippet.locator("mark").all_inner_texts()
    assert marks == (["refund", "approved"] if postgres else ["refund", "approve"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "search.png"), full_page=True)

    hits.first.locator("a").click()
    page.wait_for_url(f"**/inbox/{tcast.conversation.pk}/**#message-{found.pk}")
    target = page.locator(f"[data-testid=thread] li[data-id='{found.pk}']")
    assert "found" in target.get_attribute("class")
    assert target.is_visible() and target.evaluate(
        "node => { const r = node.getBoundingClientRect(), t = node.closest('[data-thread]').getBoundingClientRect();"
        " return r.top >= t.top && r.bottom <= t.bottom; }"
    )

    # Nothing found, said plainly; and a query with no word in it is refused with a reason.
    page.get_by_test_id("topbar-search").fill("teleportation")
    page.get_by_test_id("topbar-search").press("Enter")
    page.get_by_test_id("search-empty").wait_for()
    page.get_by_test_id("search-input").fill("?!")
    page.get_by_test_id("search-input").press("Enter")
    assert page.get_by_test_id("search-error").inner_text() == "Type a word to search for."
    assert page.js_errors == []
