"""Deleted messages on the inbox page, and the Trash page from which admins restore conversations."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.urls import reverse

from helpdesk.conversations import actions
from helpdesk.conversations.models import Conversation
from helpdesk.events.models import AuditEntry
from tests.conftest import login
from tests.helpers import count_queries
from tests.test_pages import page_state


def test_the_inbox_shows_deleted_text_only_to_those_who_may_see_it(client, cast):
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="Wrong price: 10 EUR")
    actions.delete_message(reply, by=cast.alice)
    url = reverse("web:conversation", args=[cast.conversation.pk])

    login(client, cast.alice)
    response = client.get(url)
    state = page_state(response)
    shown = state["messages"][-1]
    assert (shown["deleted"], shown["body"], shown["deleted_by_name"]) == (True, "Wrong price: 10 EUR", "Alice")
    assert state["can"] == {
        "reply": True,
        "note": True,
        "assign": True,
        "resolve": True,
        "deleteMessages": True,
        "seeDeleted": True,
        "restore": True,
        "deleteConversation": True,
        "manageContacts": True,
        "blockContacts": True,
        "snooze": True,
    }

    login(client, cast.bob)
    response = client.get(url)
    state = page_state(response)
    assert state["messages"][-1]["deleted"] is True and state["messages"][-1]["body"] == ""
    # Not anywhere on the page: not in the state, not in the list preview.
    assert "Wrong price" not in response.content.decode()
    assert {k: v for k, v in state["can"].items() if k in ("deleteMessages", "seeDeleted", "restore")} == {
        "deleteMessages": False,
        "seeDeleted": False,
        "restore": False,
    }
    assert state["can"]["deleteConversation"] is False
    assert state["i18n"]["deleted"] and state["i18n"]["deletedBy"]


def test_the_trash_is_for_those_who_may_restore(client, cast):
    login(client, cast.bob)
    assert client.get(reverse("web:trash")).status_code == 403
    actions.delete_conversation(cast.conversation, by=cast.alice)
    response = client.post(reverse("web:trash-restore", args=[cast.conversation.pk]))
    assert response.status_code == 403
    assert Conversation.objects.get(pk=cast.conversation.pk).deleted_at is not None


def test_the_trash_lists_deleted_conversations_in_the_company_timezone(client, cast):
    actions.delete_conversation(cast.conversation, by=cast.alice)
    deleted_at = Conversation.objects.get(pk=cast.conversation.pk).deleted_at
    login(client, cast.alice)
    response = client.get(reverse("web:trash"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Hello, is my order shipped?" in html and "Acme site" in html and "Alice" in html
    assert f"Visitor #{cast.conversation.contact_id}" in html
    # Acme is in Moscow (UTC+3): the time shown is Moscow's.
    assert f'datetime="{deleted_at.astimezone(ZoneInfo("Europe/Moscow")).isoformat()}"' in html
    assert [c.pk for c in response.context["page"]] == [cast.conversation.pk]
    # The settings sidebar offers it.
    assert reverse("web:trash") in html


def test_an_empty_trash_says_so(client, cast):
    login(client, cast.alice)
    response = client.get(reverse("web:trash"))
    assert response.status_code == 200 and 'data-testid="trash-empty"' in response.content.decode()


def test_restoring_from_the_trash_page(client, cast):
    actions.delete_conversation(cast.conversation, by=cast.alice)
    login(client, cast.alice)
    response = client.post(reverse("web:trash-restore", args=[cast.conversation.pk]), follow=True)
    assert response.redirect_chain == [(reverse("web:trash"), 302)]
    assert "is back in the inbox" in response.content.decode()
    assert Conversation.objects.get(pk=cast.conversation.pk).deleted_at is None
    assert AuditEntry.objects.filter(action="conversation.restored", object_id=str(cast.conversation.pk)).exists()
    # Restoring asks for a POST; and what is not in the Trash is not found there.
    assert client.get(reverse("web:trash-restore", args=[cast.conversation.pk])).status_code == 405
    assert client.post(reverse("web:trash-restore", args=[cast.conversation.pk])).status_code == 404


def test_another_companys_or_an_out_of_scope_conversation_is_404_in_the_trash(client, cast):
    actions.delete_conversation(cast.conversation, by=cast.alice)  # Acme, team Sales
    login(client, cast.carol)
    assert cast.conversation.pk not in [c.pk for c in client.get(reverse("web:trash")).context["page"]]
    assert client.post(reverse("web:trash-restore", args=[cast.conversation.pk])).status_code == 404
    erin = cast.erin  # Support only
    erin.role.permissions = [*erin.role.permissions, "restore"]
    erin.role.save()
    login(client, erin)
    assert list(client.get(reverse("web:trash")).context["page"]) == []
    assert client.post(reverse("web:trash-restore", args=[cast.conversation.pk])).status_code == 404
    assert Conversation.objects.get(pk=cast.conversation.pk).deleted_at is not None


def test_the_trash_page_query_count_does_not_grow_with_rows(client, cast):
    login(client, cast.alice)
    actions.delete_conversation(cast.conversation, by=cast.alice)
    client.get(reverse("web:trash"))  # warm the session
    one = count_queries(lambda: client.get(reverse("web:trash")))
    for i in range(6):
        message = actions.receive_message(channel=cast.widget, external_contact_id=f"bulk-{i}", body=f"hi {i}")
        actions.delete_conversation(message.conversation, by=cast.alice)
    assert count_queries(lambda: client.get(reverse("web:trash"))) == one
