"""The agents' REST API: the same gate and writer as the pages, one error shape."""

from __future__ import annotations

import pytest

from helpdesk.conversations import actions
from helpdesk.conversations.models import Message
from tests.conftest import login
from tests.helpers import count_queries

API = "/api/v1/conversations/"


def test_the_api_needs_a_signed_in_employee(client, cast):
    # Anonymous is a 401 with a challenge (a bearer key or a session would do), in the error shape.
    response = client.get(API)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"


def test_listing_conversations_with_view_and_status(client, cast):
    login(client, cast.bob)
    data = client.get(API, {"view": "all"}).json()
    assert data["count"] == 1
    row = data["results"][0]
    assert row["id"] == cast.conversation.pk and row["unread"] == 1
    # The visitor gave no name: the API says so rather than inventing one in some language.
    assert (row["contact_id"], row["contact_name"], row["channel_name"]) == (
        cast.conversation.contact_id,
        "",
        "Acme site",
    )


def test_bad_filters_are_a_400_with_field_errors(client, cast):
    login(client, cast.bob)
    response = client.get(API, {"view": "everything"})
    assert response.status_code == 400
    assert "view" in response.json()["error"]["fields"]


def test_replying_through_the_api(client, cast):
    login(client, cast.bob)
    response = client.post(
        f"{API}{cast.conversation.pk}/reply", {"body": "On its way"}, content_type="application/json"
    )
    assert response.status_code == 201
    assert response.json()["direction"] == "out"
    assert Message.objects.filter(conversation=cast.conversation, body="On its way").exists()


def test_notes_through_the_api(client, cast):
    login(client, cast.bob)
    response = client.post(f"{API}{cast.conversation.pk}/notes", {"body": "psst"}, content_type="application/json")
    assert response.status_code == 201 and response.json()["kind"] == "note"


@pytest.mark.parametrize("payload", [{}, {"body": ""}, {"body": "   "}, {"body": "x" * 5001}, {"body": ["a"]}])
def test_bad_reply_bodies_are_400_and_store_nothing(client, cast, payload):
    login(client, cast.bob)
    before = Message.objects.count()
    response = client.post(f"{API}{cast.conversation.pk}/reply", payload, content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()
    assert Message.objects.count() == before


def test_malformed_json_is_a_400(client, cast):
    login(client, cast.bob)
    response = client.post(f"{API}{cast.conversation.pk}/reply", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_assign_resolve_reopen_and_read(client, cast):
    login(client, cast.bob)
    url = f"{API}{cast.conversation.pk}"
    assert (
        client.post(f"{url}/assign", {"assignee_id": cast.bob.pk}, content_type="application/json").json()[
            "assignee_id"
        ]
        == cast.bob.pk
    )
    assert client.post(f"{url}/resolve").json()["status"] == "resolved"
    assert client.post(f"{url}/reopen").json()["status"] == "open"
    assert client.post(f"{url}/read").status_code == 204
    assert client.get(API, {"view": "mine"}).json()["results"][0]["unread"] == 0


def test_snooze_through_the_api_refuses_the_past(client, cast):
    login(client, cast.bob)
    response = client.post(
        f"{API}{cast.conversation.pk}/snooze", {"until": "2001-01-01T00:00:00Z"}, content_type="application/json"
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "past"


def test_another_companys_ids_answer_404_and_change_nothing(client, cast):
    login(client, cast.carol)
    url = f"{API}{cast.conversation.pk}"
    assert client.get(f"{url}/").status_code == 404
    assert client.get(f"{url}/messages/").status_code == 404
    assert client.post(f"{url}/reply", {"body": "hi"}, content_type="application/json").status_code == 404
    assert client.post(f"{url}/resolve").status_code == 404
    assert not Message.objects.filter(body="hi").exists()


def test_assigning_to_another_companys_employee_answers_404(client, cast):
    login(client, cast.alice)
    response = client.post(
        f"{API}{cast.conversation.pk}/assign", {"assignee_id": cast.carol.pk}, content_type="application/json"
    )
    assert response.status_code == 404
    cast.conversation.refresh_from_db()
    assert cast.conversation.assignee is None


def test_a_role_without_the_permission_gets_403(client, cast):
    cast.bob.role.permissions = ["add_notes"]
    cast.bob.role.save()
    login(client, cast.bob)
    response = client.post(f"{API}{cast.conversation.pk}/reply", {"body": "hi"}, content_type="application/json")
    assert response.status_code == 403


def test_messages_list_is_paginated_and_query_count_is_flat(client, cast):
    login(client, cast.bob)
    url = f"{API}{cast.conversation.pk}/messages/"
    client.get(url)
    one_message = count_queries(lambda: client.get(url))
    for i in range(10):
        actions.post_reply(cast.conversation, by=cast.bob, body=f"r{i}")
    assert count_queries(lambda: client.get(url)) == one_message
    data = client.get(url, {"limit": 5}).json()
    assert data["count"] == 11 and len(data["results"]) == 5


def test_conversation_list_query_count_is_flat(client, cast):
    login(client, cast.alice)
    client.get(API, {"view": "all"})
    one_row = count_queries(lambda: client.get(API, {"view": "all"}))
    for i in range(10):
        actions.receive_message(channel=cast.widget, external_contact_id=f"many-{i}", body="hi")
    assert count_queries(lambda: client.get(API, {"view": "all"})) == one_row
    assert client.get(API, {"view": "all"}).json()["count"] == 11
