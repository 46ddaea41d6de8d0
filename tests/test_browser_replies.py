"""In a real Chromium: a canned response inserted with "/", and a contact edited and blocked from the profile panel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from helpdesk.conversations import actions, canned, quick_answers
from helpdesk.conversations.models import Contact, Message
from tests.test_browser import ARTIFACTS, browser, orm, server  # noqa: F401 (fixtures)
from tests.test_browser_deletion import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_inserts_a_canned_response_with_a_slash_and_sends_it(tcast, server, browser):  # noqa: F811
    orm(
        canned.create_canned_response,
        by=tcast.alice,
        shortcut="hello",
        title="Greeting",
        body="Hello, {{contact.first_name}}! I'm {{agent.first_name}} from {{company.name}}.",
        company_wide=True,
    )
    orm(canned.create_canned_response, by=tcast.alice, shortcut="bye", title="Goodbye", body="Bye!", company_wide=True)
    orm(actions.update_contact, tcast.conversation.contact, by=tcast.alice, name="Anna Petrova")
    bob = signed_in(browser, server, tcast.bob)
    bob.goto(f"{server.url}/inbox/{tcast.conversation.pk}/?view=all&status=open")
    bob.wait_for_selector("body[data-live=yes]")
    # A quick answer replies live, marked as automatic in the history.
    orm(quick_answers.create_quick_answer, by=tcast.alice, title="Hours", triggers="opening hours", answer="9 to 6.")
    orm(actions.receive_message, channel=tcast.widget, external_contact_id="visitor-1", body="Opening hours?")
    automatic = bob.locator("[data-thread] .message.automatic")
    automatic.get_by_test_id("automatic-mark").wait_for()
    assert "9 to 6." in automatic.inner_text()

    box = bob.get_by_test_id("composer-input")
    box.click()
    box.press_sequentially("/")
    menu = bob.get_by_test_id("canned-menu")
    menu.wait_for()
    assert bob.get_by_test_id("canned-option").count() == 2  # "/" alone offers everything
    box.press_sequentially("hel")
    options = bob.get_by_test_id("canned-option")
    bob.wait_for_function("() => document.querySelectorAll('[data-testid=canned-option]').length === 1")
    assert "/hello" in options.first.inner_text() and "Greeting" in options.first.inner_text()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    bob.screenshot(path=str(ARTIFACTS / "e2e-canned-menu.png"), full_page=True)
    box.press("Enter")  # inserts, does not send
    assert menu.is_hidden()
    assert box.input_value() == "Hello, Anna! I'm Bob from Acme."

    box.press("Enter")  # now it sends
    bob.get_by_test_id("thread").get_by_text("Hello, Anna! I'm Bob from Acme.").wait_for()
    assert (
        orm(lambda: Message.objects.filter(body="Hello, Anna! I'm Bob from Acme.", author_employee=tcast.bob).count())
        == 1
    )

    # Esc closes the menu and leaves the text as typed; the menu does not open mid-word.
    box.press_sequentially("see /by")
    menu.wait_for()
    box.press("Escape")
    assert menu.is_hidden() and box.input_value() == "see /by"
    box.fill("")
    box.press_sequentially("and/or")
    assert menu.is_hidden()
    # In an internal note "/" is just a character ("@" is for mentions there).
    box.fill("")
    bob.get_by_test_id("mode-note").click()
    box.press_sequentially("/he")
    bob.wait_for_timeout(300)
    assert menu.is_hidden()


def test_an_admin_edits_and_blocks_a_contact_from_the_profile_panel(tcast, server, browser):  # noqa: F811
    alice = signed_in(browser, server, tcast.alice)
    alice.goto(f"{server.url}/inbox/{tcast.conversation.pk}/?view=all&status=open")
    alice.wait_for_selector("body[data-live=yes]")
    panel = alice.get_by_test_id("contact-panel")
    assert "visitor-1" in panel.get_by_test_id("contact-identities").inner_text()

    # Edit: the name shows in the panel, and (through the socket) in the header and the list.
    panel.get_by_test_id("contact-edit").click()
    panel.get_by_test_id("contact-input-name").fill("Anna Petrova")
    panel.get_by_test_id("contact-input-email").fill("not an address")
    panel.get_by_test_id("contact-save").click()
    panel.get_by_test_id("contact-error").wait_for()  # refused; the form stays open
    panel.get_by_test_id("contact-input-email").fill("anna@example.com")
    panel.locator("[data-contact-action=add-attribute]").click()
    panel.locator("[name=attr-name]").last.fill("plan")
    panel.locator("[name=attr-value]").last.fill("gold")
    panel.get_by_test_id("contact-save").click()
    panel.get_by_test_id("contact-field-email").get_by_text("anna@example.com").wait_for()
    assert "plan" in panel.get_by_test_id("contact-attributes").inner_text()
    saved = orm(Contact.objects.get, pk=tcast.conversation.contact_id)
    assert (saved.name, saved.email, saved.attributes) == ("Anna Petrova", "anna@example.com", {"plan": "gold"})
    alice.locator("[data-thread-title]").get_by_text("Anna Petrova").wait_for()
    alice.get_by_test_id("conversation-row").get_by_text("Anna Petrova").wait_for()
    assert alice.locator("[data-thread] .message.inbound .author").first.inner_text() == "Anna Petrova"

    # Block for 7 days with a reason.
    panel.get_by_test_id("contact-block").click()
    panel.get_by_test_id("block-days").select_option("7")
    panel.get_by_test_id("block-reason").fill("Spam links")
    panel.get_by_test_id("block-submit").click()
    blocked = panel.get_by_test_id("contact-blocked")
    blocked.wait_for()
    assert "Spam links" in blocked.inner_text() and "Alice" in blocked.inner_text()
    contact = orm(Contact.objects.get, pk=tcast.conversation.contact_id)
    assert contact.is_blocked() and contact.blocked_reason == "Spam links"
    assert timedelta(days=6, hours=23) < contact.blocked_until - timezone.now() <= timedelta(days=7)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "e2e-contact-blocked.png"), full_page=True)

    # Their next message is kept and shown marked after a reload, but nothing happened live.
    orm(actions.receive_message, channel=tcast.widget, external_contact_id="visitor-1", body="let me in")
    alice.reload()
    alice.get_by_test_id("blocked-mark").wait_for()
    alice.screenshot(path=str(ARTIFACTS / "e2e-received-while-blocked.png"), full_page=True)

    # Unblock (the confirmation is accepted by signed_in's dialog handler).
    panel.get_by_test_id("contact-unblock").click()
    panel.get_by_test_id("contact-block").wait_for()
    assert not orm(Contact.objects.get, pk=tcast.conversation.contact_id).is_blocked()
