"""The inbox's workflow in a real Chromium: snoozing, @mentions, bulk actions and typing."""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone

from helpdesk.accounts import services
from helpdesk.conversations import actions
from helpdesk.conversations.models import Conversation, Mention, Status
from helpdesk.conversations.snooze import preset_time
from tests.test_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    CUSTOMER_PAGE,
    CustomerSite,
    browser,
    orm,
    server,
    widget_ready,
)
from tests.test_browser_deletion import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_live(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("body[data-live=yes]")


def status_of(conversation) -> tuple[str, datetime | None]:
    row = Conversation.objects.values_list("status", "snoozed_until").get(pk=conversation.pk)
    return row[0], row[1]


def test_snoozing_with_a_preset_waking_up_and_unsnoozing(tcast, server, browser):  # noqa: F811
    conversation = tcast.conversation
    orm(actions.assign, conversation, by=tcast.alice, assignee=tcast.bob)
    bob = signed_in(browser, server, tcast.bob)
    open_live(bob, f"{server.url}/inbox/{conversation.pk}/?view=mine&status=open")

    # Into the past: the menu says why, and nothing changes.
    bob.get_by_test_id("snooze").click()
    bob.get_by_test_id("snooze-until").fill("2001-01-01T09:00")
    bob.get_by_test_id("snooze-pick").click()
    error = bob.get_by_test_id("snooze-error")
    error.wait_for()
    assert error.inner_text() == "Snooze time must be in the future."
    assert orm(status_of, conversation) == (Status.OPEN, None)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    bob.screenshot(path=str(ARTIFACTS / "e2e-snooze-menu.png"))

    # "Tomorrow 9:00" on the company's clock (Moscow), computed by the server.
    asked_at = timezone.now()
    bob.get_by_test_id("snooze-tomorrow").click()
    bob.get_by_test_id("unsnooze").wait_for()
    status, until = orm(status_of, conversation)
    assert status == Status.SNOOZED
    assert until in {preset_time("tomorrow", company=tcast.acme, now=at) for at in (asked_at, timezone.now())}
    assert bob.locator("[data-thread-status]").inner_text().startswith("Snoozed until")
    assert bob.get_by_test_id("conversation-row").count() == 0  # it left the open list
    assert bob.get_by_test_id("snooze-menu").count() == 0  # the menu closed, its job done

    # The Snoozed tab shows when it wakes.
    open_live(bob, f"{server.url}/inbox/{conversation.pk}/?view=mine&status=snoozed")
    assert bob.get_by_test_id("wakes-at").inner_text().startswith("Wakes ")
    bob.screenshot(path=str(ARTIFACTS / "e2e-snoozed.png"), full_page=True)

    # The customer writes: it wakes, and Bob, its assignee, is told so live.
    orm(actions.receive_message, channel=tcast.widget, external_contact_id="visitor-1", body="Any news?")
    toast = bob.get_by_test_id("toast").filter(has_text="the customer wrote")
    toast.wait_for()
    bob.screenshot(path=str(ARTIFACTS / "e2e-woken.png"))
    bob.wait_for_function("() => document.querySelector('[data-thread-status]').textContent === 'Open'")
    # The sidebar counts of the Snoozed tab follow: nothing of Bob's is snoozed any more.
    bob.wait_for_function("() => document.querySelector('[data-view-count=mine]').textContent === '0'")

    # Snoozed again with any date and time, then unsnoozed by hand.
    bob.get_by_test_id("snooze").click()
    bob.get_by_test_id("snooze-until").fill("2099-01-01T09:00")
    bob.get_by_test_id("snooze-pick").click()
    bob.get_by_test_id("unsnooze").wait_for()
    assert orm(status_of, conversation)[1] == datetime.fromisoformat("2099-01-01T06:00:00+00:00")
    bob.get_by_test_id("unsnooze").click()
    bob.get_by_test_id("snooze").wait_for()
    assert orm(status_of, conversation) == (Status.OPEN, None)


def test_mentioning_a_colleague_in_a_note_with_the_autocomplete(tcast, server, browser):  # noqa: F811
    conversation = tcast.conversation
    alice = signed_in(browser, server, tcast.alice)
    bob = signed_in(browser, server, tcast.bob)
    open_live(alice, f"{server.url}/inbox/{conversation.pk}/?view=all&status=open")
    open_live(bob, f"{server.url}/inbox/?view=all&status=open")
    assert bob.locator("[data-view-count=mentions]").inner_text() == "0"

    alice.get_by_test_id("mode-note").click()
    box = alice.get_by_test_id("composer-input")
    box.press_sequentially("Could you check the refund, @bo")
    options = alice.get_by_test_id("mention-option")
    options.first.wait_for()
    # Only people who can see the chat are offered: Bob (team Sales) yes, Erin (Support) no.
    assert options.all_inner_texts() == ["Bob"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "e2e-mention-menu.png"))
    box.press("Enter")  # picks Bob, doesn't send
    assert box.input_value() == "Could you check the refund, @Bob "
    box.press_sequentially("@Sa")
    assert [text.split()[0] for text in alice.get_by_test_id("mention-option").all_inner_texts()] == ["Sam", "Sales"]
    box.press("Escape")
    assert alice.get_by_test_id("mention-menu").count() == 0
    box.press_sequentially("les team")  # typed out by hand, without the menu: still a mention of Sales
    box.press("Enter")
    alice.locator("[data-testid=message][data-kind=note]").filter(has_text="refund").wait_for()
    assert alice.locator(".message.note .mention").all_inner_texts() == ["@Bob", "@Sales"]
    mentioned = orm(lambda: set(Mention.objects.values_list("employee__display_name", "team__name")))
    assert mentioned == {("Bob", None), (None, "Sales")}

    # Bob, elsewhere in the inbox, is told live; the Mentions view counts it until he reads it.
    bob.get_by_test_id("toast").filter(has_text="Alice mentioned you").wait_for()
    bob.wait_for_function("() => document.querySelector('[data-view-count=mentions]').textContent === '1'")
    bob.get_by_test_id("mention-badge").wait_for()
    bob.get_by_test_id("toast").get_by_role("link").click()
    bob.wait_for_url(f"**/inbox/{conversation.pk}/**")
    bob.wait_for_function("() => document.querySelector('[data-view-count=mentions]').textContent === '0'")


def test_resolving_several_conversations_at_once(tcast, server, browser):  # noqa: F811
    others = [
        orm(actions.receive_message, channel=tcast.widget, external_contact_id=f"v{i}", body=f"Question {i}")
        for i in range(2)
    ]
    alice = signed_in(browser, server, tcast.alice)
    open_live(alice, f"{server.url}/inbox/?view=all&status=open")
    rows = alice.locator("[data-testid=conversation-list] li")
    assert rows.count() == 3
    assert alice.get_by_test_id("bulk-bar").is_hidden()
    for text in ("Question 0", "Question 1"):
        rows.filter(has_text=text).get_by_test_id("row-check").check()
    assert alice.get_by_test_id("bulk-count").inner_text() == "Selected: 2"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice.screenshot(path=str(ARTIFACTS / "e2e-bulk.png"))
    alice.get_by_test_id("bulk-resolve").click()
    alice.wait_for_function("() => document.querySelectorAll('[data-testid=conversation-list] li').length === 1")
    assert alice.get_by_test_id("bulk-bar").is_hidden()
    statuses = orm(lambda: dict(Conversation.objects.values_list("pk", "status")))
    assert [statuses[m.conversation_id] for m in others] == [Status.RESOLVED, Status.RESOLVED]
    assert statuses[tcast.conversation.pk] == Status.OPEN
    alice.wait_for_function("() => document.querySelector('[data-view-count=all]').textContent === '1'")


def test_typing_shows_on_both_sides(tcast, server, browser):  # noqa: F811
    with CustomerSite() as site:
        channel = orm(
            services.create_widget_channel,
            company=tcast.acme,
            name="Shop",
            team=tcast.sales,
            allowed_origins=[site.origin],
        )
        site.html = CUSTOMER_PAGE.format(server=server.url, key=channel.public_key)
        visitor = browser.new_context().new_page()
        visitor.goto(site.origin + "/")
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()
        visitor.get_by_test_id("sc-input").fill("Hello")
        visitor.get_by_test_id("sc-input").press("Enter")
        visitor.wait_for_function(
            "() => !document.querySelector('#smartchat-widget-host').shadowRoot.querySelector('.msg.pending')"
        )
        conversation = orm(lambda: Conversation.objects.get(channel=channel))

        bob = signed_in(browser, server, tcast.bob)
        open_live(bob, f"{server.url}/inbox/{conversation.pk}/?view=all&status=open")
        visitor.get_by_test_id("sc-input").press_sequentially("I have one more question")
        bob.get_by_test_id("typing-indicator").filter(has_text="The visitor is typing…").wait_for()

        # A note being written shows nothing to the visitor; a reply does.
        bob.get_by_test_id("mode-note").click()
        bob.get_by_test_id("composer-input").press_sequentially("internal thoughts")
        visitor.wait_for_timeout(1500)
        assert visitor.get_by_test_id("sc-typing").inner_text() == ""
        bob.get_by_test_id("mode-reply").click()
        bob.get_by_test_id("composer-input").fill("")
        bob.get_by_test_id("composer-input").press_sequentially("Sure, ask away")
        visitor.get_by_test_id("sc-typing").filter(has_text="Bob is typing…").wait_for()
        bob.get_by_test_id("composer-input").press("Enter")
        visitor.locator("[data-testid=sc-message][data-from=agent]").filter(has_text="Sure, ask away").wait_for()
        assert visitor.get_by_test_id("sc-typing").inner_text() == ""
