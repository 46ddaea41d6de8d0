"""The widget in a real Chromium comes back after more than a page of messages: it gets them all.

The page's WebSocket is wrapped (an init script) only to see the frames the widget sends and to
keep it away for a while: its reconnects go to a path that refuses them until it may come back.
"""

from __future__ import annotations

import json

import pytest

from helpdesk.accounts import services
from helpdesk.accounts.models import AssignmentMethod, Team
from helpdesk.conversations import actions
from helpdesk.conversations.models import Message, MessageKind
from integrations.widget import visitors
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
PAGE = 3

WATCH_SOCKETS = """(() => {
  const Real = window.WebSocket;
  window.__away = false;
  window.__sent = [];
  window.__sockets = [];
  class Watched extends Real {
    constructor(url, protocols) {
      super(window.__away ? url.replace("/ws/widget/", "/ws/away/") : url, protocols);
      window.__sockets.push(this);
    }
    send(data) {
      window.__sent.push(data);
      return super.send(data);
    }
  }
  window.WebSocket = Watched;
})();"""


def test_a_widget_away_for_more_than_a_page_gets_every_message_once(tcast, server, browser, monkeypatch):  # noqa: F811
    monkeypatch.setattr(visitors, "RESUME_PAGE", PAGE)
    with CustomerSite() as site:
        channel = orm(
            services.create_widget_channel,
            company=tcast.acme,
            name="Shop",
            team=tcast.sales,
            allowed_origins=[site.origin],
        )
        orm(Team.objects.filter(pk=tcast.sales.pk).update, assignment_method=AssignmentMethod.MANUAL)
        site.html = CUSTOMER_PAGE.format(server=server.url, key=channel.public_key)
        page = browser.new_context().new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.add_init_script(WATCH_SOCKETS)
        page.goto(site.origin + "/")
        assert widget_ready(page) is True
        page.get_by_test_id("sc-launcher").click()
        page.get_by_test_id("sc-input").fill("Is anyone there?")
        page.get_by_test_id("sc-input").press("Enter")
        drawn = page.locator("[data-testid=sc-message]")
        page.wait_for_function(
            "() => !document.querySelector('#smartchat-widget-host').shadowRoot.querySelector('.msg.pending')"
        )
        first = orm(lambda: Message.objects.get(channel=channel, body="Is anyone there?"))

        # The visitor goes away; the team writes more than two pages meanwhile.
        page.evaluate("() => { window.__away = true; window.__sockets.forEach((s) => s.close()); }")
        page.wait_for_timeout(300)

        def write() -> list[int]:
            for n in range(2 * PAGE + 2):
                actions.post_reply(first.conversation, by=tcast.alice, body=f"Reply {n}")
            return list(
                Message.objects.filter(conversation=first.conversation, kind=MessageKind.MESSAGE)
                .order_by("pk")
                .values_list("pk", flat=True)
            )

        expected = orm(write)
        page.evaluate("() => { window.__away = false; }")

        drawn.filter(has_text=f"Reply {2 * PAGE + 1}").wait_for()
        page.wait_for_function(f"() => window.__sent.filter((f) => f.includes('resume')).length >= {1 + 3}")
        page.wait_for_timeout(300)  # nothing more is asked, nothing more is drawn
        ids = [int(i) for i in drawn.evaluate_all("nodes => nodes.map((n) => n.dataset.id)")]
        assert ids == expected  # every message, in order, once
        resumes = [json.loads(f)["after"] for f in page.evaluate("() => window.__sent") if '"resume"' in f]
        # The first resume on hello, then one per page from its last id: 8 replies, pages of 3.
        assert resumes == [0, first.pk, expected[PAGE], expected[2 * PAGE]]
