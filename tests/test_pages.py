"""The agents' pages: sign-in, inbox views, conversation page, channel settings (demo: test_demo_page.py)."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.urls import reverse

from helpdesk.conversations import actions, queries
from helpdesk.events.models import Event
from tests.conftest import PASSWORD, login
from tests.helpers import count_queries


def page_state(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="inbox-state" type="application/json">') + len(
        '<script id="inbox-state" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_anonymous_visitors_are_sent_to_sign_in(client, cast):
    response = client.get(reverse("web:inbox"))
    assert response.status_code == 302 and response.url.startswith(reverse("web:login"))


def test_signing_in_with_the_right_password_opens_the_inbox(client, cast):
    response = client.post(reverse("web:login"), {"username": "bob@acme.test", "password": PASSWORD})
    assert response.status_code == 302 and response.url == reverse("web:inbox")


def test_a_wrong_password_says_so(client, cast):
    response = client.post(reverse("web:login"), {"username": "bob@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert "don't match" in response.content.decode()


def test_signing_out(client, cast):
    login(client, cast.bob)
    response = client.post(reverse("web:logout"))
    assert response.status_code == 302
    assert client.get(reverse("web:inbox")).status_code == 302


@pytest.mark.parametrize(("view", "expected"), [("all", 1), ("unassigned", 1), ("mine", 0)])
def test_inbox_views_list_the_right_conversations(client, cast, view, expected):
    login(client, cast.bob)
    response = client.get(reverse("web:inbox"), {"view": view, "status": "open"})
    assert response.status_code == 200
    assert len(page_state(response)["conversations"]) == expected


def test_the_list_shows_unread_counts_until_the_employee_reads(client, cast):
    actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="second")
    login(client, cast.bob)
    rows = page_state(client.get(reverse("web:inbox"), {"view": "all"}))["conversations"]
    assert rows[0]["unread"] == 2
    actions.mark_read(cast.conversation, employee=cast.bob)
    rows = page_state(client.get(reverse("web:inbox"), {"view": "all"}))["conversations"]
    assert rows[0]["unread"] == 0


def test_resolved_conversations_are_under_their_own_tab(client, cast):
    actions.resolve(cast.conversation, by=cast.bob)
    login(client, cast.bob)
    assert page_state(client.get(reverse("web:inbox"), {"view": "all"}))["conversations"] == []
    resolved = page_state(client.get(reverse("web:inbox"), {"view": "all", "status": "resolved"}))
    assert [c["id"] for c in resolved["conversations"]] == [cast.conversation.pk]


def test_the_list_query_count_does_not_grow_with_rows(client, cast):
    login(client, cast.alice)
    url = reverse("web:inbox")
    client.get(url, {"view": "all"})  # warm the session
    one_row = count_queries(lambda: client.get(url, {"view": "all"}))
    for i in range(15):
        actions.receive_message(channel=cast.widget, external_contact_id=f"bulk-{i}", body=f"hello {i}")
    assert count_queries(lambda: client.get(url, {"view": "all"})) == one_row
    assert len(page_state(client.get(url, {"view": "all"}))["conversations"]) == 16


def test_the_page_lists_the_events_it_already_shows_so_catch_up_skips_them(client, cast, settings):
    settings.EVENT_CATCHUP_OVERLAP = 3
    for i in range(3):
        actions.receive_message(channel=cast.widget, external_contact_id=f"new-{i}", body=f"hello {i}")
    actions.receive_message(channel=cast.globex_widget, external_contact_id="elsewhere", body="hi")
    acme_ids = list(Event.objects.filter(company=cast.acme).order_by("id").values_list("id", flat=True))
    login(client, cast.alice)
    state = page_state(client.get(reverse("web:inbox"), {"view": "all"}))
    # The socket resumes from the newest id and re-reads the 3 before it: those are already
    # on the page, so the page lists them and the script skips them (unread is not doubled).
    assert state["lastEventId"] == acme_ids[-1]
    assert state["seenEventIds"] == [i for i in acme_ids if i > acme_ids[-1] - 3]


@pytest.mark.postgres
def test_the_page_reads_one_snapshot_on_postgresql(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only: transaction isolation")
    with queries.one_snapshot(), connection.cursor() as cursor:
        cursor.execute("SHOW transaction_isolation")
        assert cursor.fetchone()[0] == "repeatable read"
    with connection.cursor() as cursor:
        cursor.execute("SHOW transaction_isolation")
        assert cursor.fetchone()[0] == "read committed"


def test_the_conversation_page_shows_history_notes_included(client, cast):
    actions.add_note(cast.conversation, by=cast.alice, body="Careful, VIP")
    login(client, cast.bob)
    response = client.get(reverse("web:conversation", args=[cast.conversation.pk]))
    assert response.status_code == 200
    kinds = [m["kind"] for m in page_state(response)["messages"]]
    assert kinds == ["message", "note"]


def test_another_companys_conversation_is_404(client, cast):
    login(client, cast.carol)
    assert client.get(reverse("web:conversation", args=[cast.conversation.pk])).status_code == 404


def test_a_conversation_outside_the_agents_scope_is_404(client, cast):
    login(client, cast.erin)
    assert client.get(reverse("web:conversation", args=[cast.conversation.pk])).status_code == 404


def test_unknown_view_or_status_is_404(client, cast):
    login(client, cast.bob)
    assert client.get(reverse("web:inbox"), {"view": "everything"}).status_code == 404


def test_a_user_without_an_employee_gets_403(client, django_user_model, cast):
    user = django_user_model.objects.create_user(username="loner", password=PASSWORD)
    client.force_login(user)
    assert client.get(reverse("web:inbox")).status_code == 403


def test_the_channel_page_shows_the_snippet_to_admins_only(client, cast):
    login(client, cast.alice)
    response = client.get(reverse("web:channel", args=[cast.widget.pk]))
    assert response.status_code == 200
    snippet = response.context["snippet"]
    assert snippet == (
        f'<script src="http://testserver/static/widget/smartchat-widget.js" '
        f'data-channel="{cast.widget.public_key}" async></script>'
    )
    assert cast.widget.public_key in response.content.decode()
    login(client, cast.bob)
    assert client.get(reverse("web:channel", args=[cast.widget.pk])).status_code == 403
    login(client, cast.carol)
    assert client.get(reverse("web:channel", args=[cast.widget.pk])).status_code == 404


def test_admins_edit_the_allowed_origins(client, cast):
    login(client, cast.alice)
    url = reverse("web:channel", args=[cast.widget.pk])
    data = {"name": "Shop", "title": "Help", "greeting": "Hi", "color": "#123456"}
    response = client.post(url, {**data, "allowed_origins": "https://Shop.Acme.test:443/\nhttp://localhost:3000"})
    assert response.status_code == 302
    cast.widget.refresh_from_db()
    assert cast.widget.settings["allowed_origins"] == ["https://shop.acme.test", "http://localhost:3000"]


def test_a_malformed_origin_is_refused_and_nothing_changes(client, cast):
    login(client, cast.alice)
    url = reverse("web:channel", args=[cast.widget.pk])
    data = {"name": "Shop", "title": "", "greeting": "", "color": "#123456", "allowed_origins": "not a url"}
    response = client.post(url, data)
    assert response.status_code == 200
    assert "is not an origin" in response.content.decode()
    cast.widget.refresh_from_db()
    assert cast.widget.name == "Acme site"


def test_the_invitation_link_lets_a_new_employee_choose_a_password(client, cast):
    from helpdesk.accounts import actions as admin_actions

    nina = admin_actions.add_employee(by=cast.alice, email="nina@acme.test", name="Nina", role=cast.bob.role)
    link = admin_actions.password_link(nina, base_url="http://testserver")
    form_page = client.get(link, follow=True)
    assert form_page.status_code == 200 and "new_password1" in form_page.content.decode()
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": "a-Long-passw0rd", "new_password2": "a-Long-passw0rd"}
    )
    assert response.status_code == 302 and response.url == reverse("web:set-password-done")
    signed_in = client.post(reverse("web:login"), {"username": "nina@acme.test", "password": "a-Long-passw0rd"})
    assert signed_in.status_code == 302 and signed_in.url == reverse("web:inbox")
    # The link works once.
    assert "no longer works" in client.get(link, follow=True).content.decode()


def test_an_empty_lists_message_comes_before_the_list(client, cast):
    # The list takes the pane's height: after it, the message would sit at the pane's bottom.
    login(client, cast.bob)
    html = client.get(reverse("web:inbox")).content.decode()
    assert html.index("data-list-empty") < html.index('data-testid="conversation-list"')
