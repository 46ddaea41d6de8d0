"""In a real Chromium: presence in the top bar, chats handed out live, priority and reassignment.

Two agents' inboxes on the real ASGI app under uvicorn; each change made in one page shows
in the other without a reload.
"""

from __future__ import annotations

import pytest

from helpdesk.conversations import actions
from helpdesk.conversations.models import Conversation, Priority
from tests.conftest import PASSWORD
from tests.test_browser import ARTIFACTS, TIMEOUT_MS, browser, orm, server  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in(browser, server, employee, path: str = "/inbox/"):  # noqa: F811
    page = browser.new_context().new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.js_errors = errors
    page.goto(server.url + "/login/?next=" + path)
    page.fill("input[name=username]", employee.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**" + path.split("?")[0] + "**")
    page.wait_for_selector("body[data-live=yes]")
    return page


def test_chats_are_handed_out_live_and_reassigned_with_priority_and_presence(tcast, server, browser):  # noqa: F811
    conversation = tcast.conversation
    # Alice (admin) has the chat open; the top bar shows her presence.
    alice = signed_in(browser, server, tcast.alice, f"/inbox/{conversation.pk}/?view=all")
    assert alice.get_by_test_id("presence").input_value() == "online"  # opening the inbox
    assignee = alice.get_by_test_id("assignee-select")
    assert assignee.input_value() == ""  # nobody in Sales is online: it waits

    # Bob opens his inbox: he is online, and the waiting chat is his, live in his list.
    bob = signed_in(browser, server, tcast.bob)
    bob.get_by_test_id("conversation-row").filter(has_text="Hello, is my order shipped?").wait_for()
    alice.wait_for_function("() => document.querySelector('[data-testid=assignee-select]').value !== ''")
    assert assignee.locator("option:checked").inner_text() == "Bob · online"
    history = alice.get_by_test_id("history-line")
    history.filter(has_text="Assigned to Bob automatically").wait_for()

    # Alice makes it urgent: the badge shows in both lists, and the history says who did it.
    alice.get_by_test_id("priority-select").select_option(str(Priority.URGENT))
    history.filter(has_text="Alice set the priority to Urgent").wait_for()
    bob.get_by_test_id("priority-badge").filter(has_text="Urgent").wait_for()

    # Bob steps away from the top bar: Alice's picker says so, live.
    bob.get_by_test_id("presence").select_option("away")
    alice.wait_for_function(
        "() => document.querySelector('[data-testid=assignee-select] option:checked').textContent === 'Bob · away'"
    )
    assert bob.url.endswith("/inbox/")  # the menu answered without leaving the page

    # The customer picked the wrong topic: Alice moves it to Support. Nobody there is online,
    # so it waits in Support's queue; Bob's list lets it go.
    alice.get_by_test_id("team-select").select_option(str(tcast.support.pk))
    history.filter(has_text="Alice moved this to Support").wait_for()
    assert assignee.input_value() == ""
    bob.get_by_test_id("conversation-row").wait_for(state="detached")
    moved = orm(Conversation.objects.get, pk=conversation.pk)
    assert (moved.team_id, moved.assignee_id, moved.priority) == (tcast.support.pk, None, Priority.URGENT)

    # And to Erin by name, whose presence the picker shows.
    assignee.select_option(str(tcast.erin.pk))
    history.filter(has_text="Alice assigned this to Erin").wait_for()
    assert orm(Conversation.objects.get, pk=conversation.pk).assignee_id == tcast.erin.pk

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "e2e-assignment.png"), full_page=True)
    assert alice.js_errors == [] and bob.js_errors == []


def test_the_list_can_put_the_highest_priority_first_and_remembers_it(tcast, server, browser):  # noqa: F811
    urgent = orm(
        lambda: actions.receive_message(channel=tcast.widget, external_contact_id="v2", body="Urgent one").conversation
    )
    orm(actions.receive_message, channel=tcast.widget, external_contact_id="v3", body="Newest one")
    orm(actions.set_priority, urgent, by=tcast.alice, priority=Priority.HIGH)
    alice = signed_in(browser, server, tcast.alice, "/inbox/?view=all")
    rows = alice.get_by_test_id("conversation-row")
    assert "Newest one" in rows.first.inner_text()  # newest activity first, by default
    alice.get_by_test_id("ordering").select_option("priority")
    assert "Urgent one" in rows.first.inner_text() and "High" in rows.first.inner_text()
    # Waiting longest comes next among the rest: the cast's first chat before the newest.
    assert "Hello, is my order shipped?" in rows.nth(1).inner_text()
    alice.reload()
    alice.wait_for_selector("body[data-live=yes]")
    assert alice.get_by_test_id("ordering").input_value() == "priority"
    assert "Urgent one" in rows.first.inner_text()
    assert alice.js_errors == []
