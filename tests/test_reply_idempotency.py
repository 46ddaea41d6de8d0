"""An agent's reply or note resent under its Idempotency-Key is stored once (issue 11, faults).

A client whose answer was lost (a 503 with Retry-After while the database restarted, a
timeout) sends the same message again with the same key: it gets the stored message back
(200, ``Idempotent-Replayed: true``), and nothing is written, recorded or queued again. The
database's unique constraint decides, so two resends racing each other store one message.
Real PostgreSQL; the race runs on committed data in threads of their own.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from django.db import connection, connections, transaction

from helpdesk.conversations import actions, adapters
from helpdesk.conversations.models import Conversation, Delivery, Message
from helpdesk.events.models import Event
from tests.conftest import login
from tests.delivery_kit import Pigeon, channel_of, conversation_on, drain
from tests.helpers import event_types, last_event_id
from tests.test_attachments import PDF, PNG, upload

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="counted and raced on PostgreSQL")

KEY = "3f2b9c1e-7a4d-4e1b-9c2a-5d6e7f8a9b0c"


def url(conversation: Conversation, path: str = "reply") -> str:
    return f"/api/v1/conversations/{conversation.pk}/{path}"


def send(client, conversation, body="It ships today.", *, key=KEY, path="reply", **extra):
    headers = {} if key is None else {"Idempotency-Key": key}
    return client.post(
        url(conversation, path), {"body": body, **extra}, content_type="application/json", headers=headers
    )


@pytest.fixture
def chat(cast, monkeypatch, settings):
    """A conversation on a channel that delivers (its replies get a Delivery row), seen by Bob."""
    adapter = Pigeon()
    monkeypatch.setitem(adapters._registry, adapter.kind, adapter)
    settings.DELIVERY_QUEUE = f"test-idempotency-{os.getpid()}-{time.monotonic_ns()}"
    yield conversation_on(channel_of(adapter, cast.acme, cast.sales))
    drain(settings.DELIVERY_QUEUE)


def test_a_resent_reply_answers_the_stored_one_and_writes_nothing(cast, chat, client):
    login(client, cast.bob)
    first = send(client, chat)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    messages, mark = Message.objects.count(), last_event_id()
    again = send(client, chat)
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Message.objects.count() == messages
    assert event_types(after=mark) == []
    assert Delivery.objects.filter(message__conversation=chat).count() == 1


def test_a_resent_note_is_stored_once_too(cast, client):
    login(client, cast.bob)
    first = send(client, cast.conversation, "Checking with the warehouse", path="notes")
    mark = last_event_id()
    again = send(client, cast.conversation, "Checking with the warehouse", path="notes")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert event_types(after=mark) == []


@pytest.fixture
def files(settings, tmp_path):
    from django.core.files.storage import storages

    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    storages._storages.pop("attachments", None)
    yield
    storages._storages.pop("attachments", None)


def without_links(message: dict) -> dict:
    """The message as stored: a file's link is signed afresh in each answer (its time changes)."""
    files = [{k: v for k, v in f.items() if k != "url"} for f in message["attachments"]]
    assert all(f["url"].startswith("/files/") for f in message["attachments"])
    return {**message, "attachments": files}


def test_a_resent_reply_with_files_is_stored_once_and_other_files_conflict(cast, client, files):
    # With files the reply takes the long road (actions.replies._add_agent_message).
    login(client, cast.bob)
    png, pdf = (
        upload(client, cast.conversation, data, name).json()["id"] for data, name in ((PNG, "a.png"), (PDF, "b.pdf"))
    )
    first = send(client, cast.conversation, "", attachments=[png])
    assert first.status_code == 201, first.content
    mark = last_event_id()
    again = send(client, cast.conversation, "", attachments=[png])
    assert again.status_code == 200 and without_links(again.json()) == without_links(first.json())
    assert [a["id"] for a in again.json()["attachments"]] == [png]
    other = send(client, cast.conversation, "", attachments=[pdf])
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    assert event_types(after=mark) == []
    assert Message.objects.filter(idempotency_key=KEY).count() == 1


def test_the_same_key_with_another_message_is_a_conflict(cast, client):
    login(client, cast.bob)
    assert send(client, cast.conversation).status_code == 201
    stored, mark = Message.objects.count(), last_event_id()
    for response in (
        send(client, cast.conversation, "Something else entirely"),
        send(client, cast.conversation, path="notes"),  # same text, but a note, not a reply
    ):
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "idempotency_conflict"
        assert "Idempotency-Key" in response.json()["error"]["message"]
    assert Message.objects.count() == stored and event_types(after=mark) == []


def test_keys_are_each_employees_own_in_each_conversation(cast, chat, client):
    login(client, cast.bob)
    assert send(client, cast.conversation).status_code == 201
    assert send(client, chat).status_code == 201  # another conversation: a new message
    login(client, cast.alice)
    alices = send(client, cast.conversation)  # another employee: a new message
    assert alices.status_code == 201
    assert Message.objects.filter(idempotency_key=KEY).count() == 3


def test_without_a_key_every_send_is_a_new_message(cast, client):
    login(client, cast.bob)
    assert send(client, cast.conversation, key=None).status_code == 201
    assert send(client, cast.conversation, key=None).status_code == 201
    assert Message.objects.filter(conversation=cast.conversation, author_employee=cast.bob).count() == 2


@pytest.mark.parametrize("key", ["", "short", "x" * 65, "has space in it", "ключ-по-русски", "a/b/c/d/e/f"])
def test_a_malformed_key_is_refused_with_a_clear_400(cast, client, key):
    login(client, cast.bob)
    messages = Message.objects.count()
    for path in ("reply", "notes"):
        response = send(client, cast.conversation, key=key, path=path)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "bad_idempotency_key" and "Idempotency-Key" in error["message"]
    assert Message.objects.count() == messages


def test_a_replay_still_needs_sight_of_the_conversation(cast, client):
    login(client, cast.bob)
    assert send(client, cast.conversation).status_code == 201
    login(client, cast.erin)  # Support: can't see Sales' conversation
    assert send(client, cast.conversation).status_code == 404


@postgresql_only
def test_a_keyed_reply_costs_what_an_unkeyed_one_does(cast, client, django_assert_num_queries):
    # The pinned 3 + 5 of tests/test_message_queries.py: the key rides in the same statement.
    Conversation.objects.filter(pk=cast.conversation.pk).update(assignee=cast.bob)
    login(client, cast.bob)
    send(client, cast.conversation, "Warming up", key="warming-up-0001")
    with django_assert_num_queries(3 + 5):
        assert send(client, cast.conversation).status_code == 201


@postgresql_only
def test_two_resends_racing_each_other_store_one_message(tcast):
    """Both wait on the conversation's row lock held here, then go at once: the database's
    unique constraint refuses the second, which answers with the first's message."""
    conversation, bob = tcast.conversation, tcast.bob
    results: list = []

    def resend():
        try:
            results.append(actions.post_reply(conversation, by=bob, body="Racing", idempotency_key=KEY))
        except Exception as exc:  # reported by the asserts below
            results.append(exc)
        finally:
            connections.close_all()

    mark = last_event_id()
    threads = [threading.Thread(target=resend) for _ in range(2)]
    with transaction.atomic():
        Conversation.objects.select_for_update().get(pk=conversation.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
                if cursor.fetchone()[0] >= 2:
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the two resends never both waited on the conversation")
    for thread in threads:
        thread.join(timeout=20)
    assert all(isinstance(r, Message) for r in results), results
    assert len({r.pk for r in results}) == 1
    assert sorted(getattr(r, "replayed", False) for r in results) == [False, True]
    assert Message.objects.filter(idempotency_key=KEY).count() == 1
    assert event_types(after=mark) == ["message.created"]
    assert Event.objects.filter(type="message.created", payload__message__id=results[0].pk).count() == 1
