"""Deleting and restoring, live, in a real Chromium: an admin and an agent on the same conversation."""

from __future__ import annotations

import pytest

from helpdesk.conversations import actions
from tests.conftest import PASSWORD
from tests.test_browser import ARTIFACTS, TIMEOUT_MS, browser, orm, server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def signed_in(browser, server, employee):  # noqa: F811
    page = browser.new_context().new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("dialog", lambda dialog: dialog.accept())  # "Delete this message?" and friends
    page.goto(server.url + "/login/")
    page.fill("input[name=username]", employee.user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/inbox/**")
    return page


def test_an_admin_deletes_and_restores_while_an_agent_watches(tcast, server, browser):  # noqa: F811
    conversation = tcast.conversation
    reply = orm(actions.post_reply, conversation, by=tcast.bob, body="Wrong price: 10 EUR")
    url = f"{server.url}/inbox/{conversation.pk}/?view=all&status=open"
    alice = signed_in(browser, server, tcast.alice)
    bob = signed_in(browser, server, tcast.bob)
    for page in (alice, bob):
        page.goto(url)
        page.wait_for_selector("body[data-live=yes]")
    in_alices = alice.locator(f"[data-testid=thread] li[data-id='{reply.pk}']")
    in_bobs = bob.locator(f"[data-testid=thread] li[data-id='{reply.pk}']")
    in_bobs.get_by_text("Wrong price: 10 EUR").wait_for()
    # Bob may not delete: he has no button for it.
    assert in_bobs.get_by_test_id("message-delete").count() == 0

    # Alice deletes the reply: Bob's thread says only "Message deleted", live; the text is gone
    # from his page altogether, list preview included.
    in_alices.hover()
    in_alices.get_by_test_id("message-delete").click()
    in_bobs.get_by_test_id("deleted-placeholder").wait_for()
    assert in_bobs.inner_text().count("Message deleted") == 1
    bob.wait_for_function("() => !document.body.innerText.includes('Wrong price')")
    bob_row = bob.get_by_test_id("conversation-row")
    assert "Hello, is my order shipped?" in bob_row.inner_text()
    # Alice still sees it where it was, struck through, with who deleted it.
    in_alices.get_by_test_id("deleted-note").wait_for()
    assert "Deleted by Alice" in in_alices.get_by_test_id("deleted-note").inner_text()
    struck = in_alices.locator(".body.struck")
    assert struck.inner_text() == "Wrong price: 10 EUR"
    assert "line-through" in struck.evaluate("e => getComputedStyle(e).textDecorationLine")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "e2e-deleted-admin.png"), full_page=True)
    bob.screenshot(path=str(ARTIFACTS / "e2e-deleted-agent.png"), full_page=True)

    # Alice restores it: both see the text again, live.
    in_alices.get_by_test_id("message-restore").click()
    in_bobs.get_by_text("Wrong price: 10 EUR").wait_for()
    alice.locator(f"[data-testid=thread] li.deleted[data-id='{reply.pk}']").wait_for(state="detached")
    assert in_alices.get_by_test_id("deleted-note").count() == 0
    assert in_bobs.get_by_test_id("deleted-placeholder").count() == 0

    # Alice deletes the whole conversation: it leaves Bob's list live, and Alice's page goes back to the list.
    alice.get_by_test_id("delete-conversation").click()
    alice.wait_for_url(f"{server.url}/inbox/?view=all&status=open")
    bob_row.wait_for(state="detached")
    assert bob.locator("[data-gone]").inner_text() == "This conversation was moved to the Trash."
    assert alice.get_by_test_id("conversation-row").count() == 0

    # Alice finds it in the Trash (through the settings navigation) and restores it: back in Bob's list, live.
    alice.get_by_test_id("nav-settings").click()
    alice.get_by_role("link", name="Trash").click()
    row = alice.get_by_test_id("trash-row")
    assert "Alice" in row.inner_text() and "Acme site" in row.inner_text()
    alice.screenshot(path=str(ARTIFACTS / "e2e-trash.png"), full_page=True)
    row.get_by_test_id("trash-restore").click()
    alice.get_by_test_id("trash-empty").wait_for()
    assert "is back in the inbox" in alice.locator(".flash").inner_text()
    bob.get_by_test_id("conversation-row").wait_for()
    bob.locator("[data-gone]").wait_for(state="hidden")
    assert orm(lambda: type(conversation).objects.get(pk=conversation.pk).deleted_at) is None


def test_the_audit_log_page_renders_for_an_admin(tcast, server, browser):  # noqa: F811
    orm(actions.delete_conversation, tcast.conversation, by=tcast.alice)
    alice = signed_in(browser, server, tcast.alice)
    alice.goto(server.url + "/settings/audit-log/")
    # Newest first: Alice's own sign-in, then the deletion.
    rows = alice.get_by_test_id("audit-row")
    assert rows.count() == 2 and "Signed in" in rows.nth(0).inner_text()
    row = rows.filter(has_text="Conversation deleted")
    assert "Alice" in row.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "e2e-audit-log.png"), full_page=True)
    alice.select_option("select[name=action]", "team.created")
    alice.get_by_role("button", name="Filter").click()
    alice.get_by_test_id("audit-empty").wait_for()
    assert "action=team.created" in alice.get_by_test_id("audit-export").get_attribute("href")
