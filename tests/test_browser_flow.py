"""One chat's whole journey in a real Chromium, across origins and three browsers.

A visitor writes from the widget on a customer's site; automatic assignment gives the chat
to Bob (Sales); Bob @mentions Erin in a note and moves the chat to Support, where automatic
assignment gives it to Erin; Erin snoozes it, and the visitor's next message wakes it. Each
step shows in the other people's pages live, without a reload.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from django.utils import timezone

from helpdesk.accounts import actions as account_actions
from helpdesk.accounts import services
from helpdesk.accounts.models import AssignmentMethod, Employee, Presence, Team
from helpdesk.conversations.models import Conversation, Mention, Status
from helpdesk.conversations.snooze import preset_time
from tests.test_browser import (  # noqa: F401 (fixtures)
    ARTIFACTS,
    CUSTOMER_PAGE,
    TIMEOUT_MS,
    CustomerSite,
    browser,
    orm,
    server,
    widget_ready,
)
from tests.test_browser_assignment import signed_in
from tests.test_browser_workflow import open_live

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDGET_HOST = "#smartchat-widget-host"


def watched(page):
    """Collect the page's uncaught script errors in ``page.js_errors``."""
    page.set_default_timeout(TIMEOUT_MS)
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    return page


def write_in_widget(visitor, text: str) -> None:
    visitor.get_by_test_id("sc-input").fill(text)
    visitor.get_by_test_id("sc-send").click()
    # Stored by the server (no longer pending), not just drawn by the widget.
    visitor.wait_for_function(
        "host => !document.querySelector(host).shadowRoot.querySelector('.msg.pending')", arg=WIDGET_HOST
    )


def wait_for_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent === text", arg=[selector, text]
    )


def routing_of(conversation_id: int) -> tuple[str, int | None, int | None, datetime | None]:
    return Conversation.objects.values_list("status", "team_id", "assignee_id", "snoozed_until").get(pk=conversation_id)


def test_a_widget_chat_goes_to_bob_then_to_erin_and_wakes_when_the_customer_writes(tcast, server, browser):  # noqa: F811
    # Both teams hand out their chats automatically, with the default method.
    methods = orm(lambda: set(Team.objects.filter(company=tcast.acme).values_list("assignment_method", flat=True)))
    assert methods == {AssignmentMethod.BALANCED}

    with CustomerSite() as site:
        channel = orm(
            services.create_widget_channel,
            company=tcast.acme,
            name="Acme shop",
            team=tcast.sales,
            allowed_origins=[site.origin],
        )
        site.html = CUSTOMER_PAGE.format(server=server.url, key=channel.public_key)

        # --- 1. The visitor writes; the chat goes to Bob, the one Sales agent online ----------------
        # Opening the inbox brings Bob online (the top bar says so); the cast's waiting chat is his at once.
        bob = signed_in(browser, server, tcast.bob, "/inbox/?view=mine&status=open")
        assert bob.get_by_test_id("presence").input_value() == "online"
        assert orm(lambda: Employee.objects.get(pk=tcast.bob.pk).presence) == Presence.ONLINE
        bob_rows = bob.get_by_test_id("conversation-row")
        bob_rows.filter(has_text="Hello, is my order shipped?").wait_for()

        visitor = watched(browser.new_context().new_page())
        visitor.goto(site.origin + "/")
        assert widget_ready(visitor) is True
        visitor.get_by_test_id("sc-launcher").click()
        write_in_widget(visitor, "Where is my parcel #4521?")

        bob_row = bob_rows.filter(has_text="Where is my parcel #4521?")
        bob_row.wait_for()  # in Bob's own list, live
        conversation = orm(Conversation.objects.get, channel=channel)
        assert orm(routing_of, conversation.pk) == (Status.OPEN, tcast.sales.pk, tcast.bob.pk, None)

        # --- 2. Bob @mentions Erin in a note; Erin is told live -----------------------------------
        # A mention never reveals a chat: only those who can see it may be mentioned, and Erin
        # (Support) can't see Sales' chats. She helps Sales too from now on, as an admin would set it;
        # the chat is Bob's already, so this doesn't change who got it.
        orm(account_actions.update_employee, tcast.erin, by=tcast.alice, teams=[tcast.sales, tcast.support])
        erin = signed_in(browser, server, tcast.erin, "/inbox/?view=mine&status=open")
        assert erin.get_by_test_id("conversation-row").count() == 0
        # A second tab of hers shows the Mentions view.
        erin_mentions = watched(erin.context.new_page())
        open_live(erin_mentions, f"{server.url}/inbox/?view=mentions&status=open")
        assert erin_mentions.locator("[data-view-count=mentions]").inner_text() == "0"

        bob_row.click()
        bob.wait_for_url(f"**/inbox/{conversation.pk}/**")
        bob.wait_for_selector("body[data-live=yes]")
        bob.get_by_test_id("history-line").filter(has_text="Assigned to Bob automatically").wait_for()
        bob.get_by_test_id("mode-note").click()
        box = bob.get_by_test_id("composer-input")
        box.press_sequentially("@Er")
        options = bob.get_by_test_id("mention-option")
        options.first.wait_for()
        assert options.all_inner_texts() == ["Erin"]
        box.press("Enter")  # picks Erin, doesn't send
        assert box.input_value() == "@Erin "
        box.press_sequentially("could you take over? The parcel went through your warehouse.")
        box.press("Enter")
        note = bob.locator("[data-testid=message][data-kind=note]").filter(has_text="could you take over?")
        note.wait_for()
        assert note.locator(".mention").all_inner_texts() == ["@Erin"]
        mentioned = orm(lambda: list(Mention.objects.values_list("conversation_id", "employee_id", "team_id")))
        assert mentioned == [(conversation.pk, tcast.erin.pk, None)]

        # Erin, in both tabs, gets a notice; the chat shows under Mentions, marked, and is counted.
        for page in (erin, erin_mentions):
            page.get_by_test_id("toast").filter(has_text="Bob mentioned you in a note").wait_for()
            wait_for_text(page, "[data-view-count=mentions]", "1")
        mentioned_row = erin_mentions.locator("[data-testid=conversation-list] li").filter(
            has_text="Where is my parcel #4521?"
        )
        mentioned_row.get_by_test_id("mention-badge").wait_for()
        assert erin.get_by_test_id("conversation-row").count() == 0  # mentioned, not hers yet

        # --- 3. Bob moves it to Support; automatic assignment gives it to Erin -------------------
        bob.get_by_test_id("team-select").select_option(str(tcast.support.pk))
        bob.get_by_test_id("history-line").filter(has_text="Bob moved this to Support").wait_for()
        erin_row = erin.get_by_test_id("conversation-row").filter(has_text="Where is my parcel #4521?")
        erin_row.wait_for()  # in Erin's Mine, live
        bob_row.wait_for(state="detached")  # out of Bob's list, live
        bob.locator("[data-gone]").wait_for()  # "This conversation has moved out of your inbox."
        assert bob_rows.count() == 1  # the cast's chat stays his
        assert orm(routing_of, conversation.pk) == (Status.OPEN, tcast.support.pk, tcast.erin.pk, None)

        erin_row.click()
        erin.wait_for_url(f"**/inbox/{conversation.pk}/**")
        erin.wait_for_selector("body[data-live=yes]")
        erin.get_by_test_id("history-line").filter(has_text="Assigned to Erin automatically").wait_for()
        assert erin.locator(".message.note .mention").all_inner_texts() == ["@Erin"]

        # --- 4. Erin snoozes it: out of her open list, into Snoozed ------------------------------
        asked_at = timezone.now()
        erin.get_by_test_id("snooze").click()
        erin.get_by_test_id("snooze-hour").click()
        erin.get_by_test_id("unsnooze").wait_for()
        erin_row.wait_for(state="detached")
        status, team_id, assignee_id, until = orm(routing_of, conversation.pk)
        assert (status, team_id, assignee_id) == (Status.SNOOZED, tcast.support.pk, tcast.erin.pk)
        hour = [preset_time("hour", company=tcast.acme, now=at) for at in (asked_at, timezone.now())]
        assert hour[0] <= until <= hour[1]

        erin.get_by_test_id("status-snoozed").click()
        erin.wait_for_url("**status=snoozed**")
        erin.wait_for_selector("body[data-live=yes]")
        erin_row.get_by_test_id("wakes-at").wait_for()
        erin_row.click()
        erin.wait_for_url(f"**/inbox/{conversation.pk}/**")
        erin.wait_for_selector("body[data-live=yes]")
        assert erin.url.endswith("status=snoozed")
        assert erin.locator("[data-thread-status]").inner_text().startswith("Snoozed until")
        history = erin.get_by_test_id("history-line")
        history.filter(has_text="Erin snoozed this until").wait_for()

        # --- 5. The customer writes again: it wakes, and Erin is told and sees the message -------
        write_in_widget(visitor, "Any news about my parcel?")
        erin.get_by_test_id("toast").filter(has_text="woke up: the customer wrote").wait_for()
        erin.get_by_test_id("thread").get_by_text("Any news about my parcel?").wait_for()
        history.filter(has_text="Woke up: the customer wrote").wait_for()  # in the thread's history, live
        wait_for_text(erin, "[data-thread-status]", "Open")
        erin_row.wait_for(state="detached")  # out of the Snoozed list
        erin.get_by_test_id("snooze").wait_for()  # it can be snoozed again: it is open
        assert orm(routing_of, conversation.pk) == (Status.OPEN, tcast.support.pk, tcast.erin.pk, None)

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        erin.screenshot(path=str(ARTIFACTS / "e2e-flow.png"), full_page=True)
        errors = {"bob": bob, "erin": erin, "erin's mentions tab": erin_mentions, "visitor": visitor}
        assert {name: page.js_errors for name, page in errors.items() if page.js_errors} == {}
