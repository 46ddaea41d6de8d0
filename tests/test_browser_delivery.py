"""A message that could not be delivered, in a real Chromium: its status live, and Retry."""

from __future__ import annotations

import os
import time

import pytest

from helpdesk.conversations import actions, adapters
from helpdesk.conversations.adapters import DeliveryError
from helpdesk.conversations.models import Delivery
from tests.delivery_kit import Pigeon, channel_of, conversation_on, drain
from tests.test_browser import ARTIFACTS, browser, orm, server  # noqa: F401 (fixtures)
from tests.test_browser_deletion import signed_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_agent_sees_a_failed_delivery_live_and_retries_it(tcast, server, browser, settings, monkeypatch):  # noqa: F811
    settings.DELIVERY_QUEUE = queue = f"test-delivery-{os.getpid()}-{time.monotonic_ns()}"
    pigeon = Pigeon(script=[DeliveryError("Forbidden: bot was blocked by the user", permanent=True)])
    monkeypatch.setitem(adapters._registry, pigeon.kind, pigeon)
    chat = orm(lambda: conversation_on(channel_of(pigeon, tcast.acme, tcast.sales)))
    page = signed_in(browser, server, tcast.bob)
    page.goto(f"{server.url}/inbox/{chat.pk}/?view=all&status=open")
    page.wait_for_selector("body[data-live=yes]")

    # Bob answers from the reply box: on its way…
    page.get_by_test_id("composer-input").fill("Your parcel left today")
    page.get_by_test_id("send").click()
    sent = page.locator("[data-testid=thread] li.outbound").last
    sent.get_by_text("Sending…").wait_for()
    message = orm(lambda: Delivery.objects.get())
    # … then the worker's attempt fails for good: Bob sees why, live, and a Retry button.
    orm(actions.send_delivery, message.pk)
    sent.get_by_text("Not delivered: Forbidden: bot was blocked by the user").wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "e2e-delivery-failed.png"), full_page=True)

    # Retry: queued again at once; the next attempt goes through and the line says Sent.
    sent.get_by_test_id("message-retry").click()
    sent.get_by_text("Sending…").wait_for()
    assert sent.get_by_test_id("message-retry").count() == 0
    orm(actions.send_delivery, message.pk)
    sent.get_by_text("Sent", exact=True).wait_for()
    assert [body for _id, _key, body in pigeon.sent] == ["Your parcel left today"]
    drain(queue)
