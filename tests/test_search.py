"""Search: messages, notes and contacts, only within what the employee may see.

Full-text behaviour (word forms in Russian and English, phrases, prefixes, the index) needs
PostgreSQL; those tests skip on the embedded SQLite default, where search matches words as
substrings. Scope, deletion, escaping, paging and bad input are checked on both.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import connection, transaction
from django.db.models import Value
from django.urls import reverse

from helpdesk.accounts import services
from helpdesk.conversations import actions, search
from helpdesk.conversations.models import Contact, Message
from tests.conftest import login

postgres_only = pytest.mark.skipif(
    "postgresql" not in __import__("django.conf").conf.settings.DATABASES["default"]["ENGINE"],
    reason="full-text search runs on PostgreSQL; SQLite matches substrings",
)

API = "/api/v1/search/"


def texts(page: search.MessagePage) -> list[str]:
    return [hit.message.body for hit in page.hits]


def marked(hit: search.MessageHit) -> list[str]:
    return [s.text for s in hit.segments if s.match]


@pytest.fixture
def world(cast) -> SimpleNamespace:
    """Sales (cast.widget) and Support channels, a chat for each, one assigned to dave."""
    support_site = services.create_widget_channel(
        company=cast.acme, name="Support site", team=cast.support, allowed_origins=["*"]
    )
    sales_chat = actions.receive_message(
        channel=cast.widget, external_contact_id="ivan", body="Хочу оформить возврат заказа", external_id="s:1"
    ).conversation
    support_chat = actions.receive_message(
        channel=support_site, external_contact_id="kate", body="I need a refund for my order", external_id="p:1"
    ).conversation
    daves_chat = actions.receive_message(
        channel=support_site, external_contact_id="lev", body="Refund, please: it arrived broken", external_id="p:2"
    ).conversation
    actions.assign(daves_chat, by=cast.alice, assignee=cast.dave)
    globex_chat = actions.receive_message(
        channel=cast.globex_widget, external_contact_id="g", body="refund at Globex", external_id="g:1"
    ).conversation
    return SimpleNamespace(
        **vars(cast), sales_chat=sales_chat, support_chat=support_chat, daves_chat=daves_chat, globex_chat=globex_chat
    )


# --- Within the scope, and never what was deleted ----------------------------------------------


def test_each_employee_finds_only_what_their_scope_shows(world):
    assert {h.message.conversation for h in search.messages(world.alice, "refund").hits} == {
        world.support_chat,
        world.daves_chat,
    }
    assert search.messages(world.bob, "refund").hits == []  # Sales: neither refund chat is his team's
    assert texts(search.messages(world.erin, "refund")) == [
        "Refund, please: it arrived broken",
        "I need a refund for my order",
    ]
    assert texts(search.messages(world.dave, "refund")) == ["Refund, please: it arrived broken"]  # assigned to him
    assert texts(search.messages(world.carol, "refund")) == ["refund at Globex"]  # another company's own


def test_moving_a_chat_out_of_the_team_takes_it_out_of_the_results(world):
    assert len(search.messages(world.erin, "refund").hits) == 2
    actions.assign(world.support_chat, by=world.alice, team=world.sales)
    assert texts(search.messages(world.erin, "refund")) == ["Refund, please: it arrived broken"]
    assert texts(search.messages(world.bob, "refund")) == ["I need a refund for my order"]


def test_notes_are_found_by_the_team_and_system_lines_never(world):
    actions.add_note(world.support_chat, by=world.erin, body="Refund approved by finance")
    actions.assign(world.support_chat, by=world.alice, assignee=world.erin)  # writes a system line
    hits = search.messages(world.erin, "approved").hits
    assert [(h.message.kind, h.message.body) for h in hits] == [("note", "Refund approved by finance")]
    # The system line about the assignment names Erin; searching her name finds no message.
    assert search.messages(world.alice, "Erin").hits == []


def test_deleted_messages_and_trashed_conversations_are_not_found_even_by_admins(world):
    reply = actions.post_reply(world.support_chat, by=world.alice, body="Your refund code is ZX81")
    assert texts(search.messages(world.alice, "ZX81")) == ["Your refund code is ZX81"]
    actions.delete_message(reply, by=world.alice)
    assert search.messages(world.alice, "ZX81").hits == []
    actions.delete_conversation(world.daves_chat, by=world.alice)
    assert texts(search.messages(world.alice, "refund")) == ["I need a refund for my order"]
    actions.restore_conversation(world.daves_chat, by=world.alice)
    assert len(search.messages(world.alice, "refund").hits) == 2


def test_an_inactive_employee_finds_nothing(world):
    world.erin.is_active = False
    world.erin.save(update_fields=["is_active"])
    assert search.messages(world.erin, "refund").hits == []
    assert search.contacts(world.erin, "a") == []


# --- Full text: word forms, both languages, phrases, prefixes ----------------------------------


@postgres_only
def test_word_forms_are_found_in_russian_and_english(world):
    actions.post_reply(world.sales_chat, by=world.bob, body="Возвраты оформляем за три дня. Refunds take 3 days.")
    # "возвратом" and "возврат"/"Возвраты" share a stem; "refunding" and "Refunds" too.
    assert texts(search.messages(world.bob, "возвратом")) == [
        "Возвраты оформляем за три дня. Refunds take 3 days.",
        "Хочу оформить возврат заказа",
    ]
    assert texts(search.messages(world.bob, "refunding")) == ["Возвраты оформляем за три дня. Refunds take 3 days."]
    # Mixed-language queries: every word must match, in either language.
    assert texts(search.messages(world.bob, "заказы хочу")) == ["Хочу оформить возврат заказа"]
    assert search.messages(world.bob, "заказы refund").hits == []


@postgres_only
def test_phrases_alternatives_exclusions_and_the_word_being_typed(world):
    erin = world.erin
    assert texts(search.messages(erin, '"need a refund"')) == ["I need a refund for my order"]
    assert search.messages(erin, '"refund need"').hits == []  # the words, but not in that order
    assert len(search.messages(erin, "broken or order").hits) == 2
    assert len(search.messages(erin, "broken или order").hits) == 2  # as a Russian speaker writes it
    assert texts(search.messages(erin, "refund -broken")) == ["I need a refund for my order"]
    assert texts(search.messages(erin, "arrived bro")) == ["Refund, please: it arrived broken"]  # typing "broken"
    assert search.messages(erin, "arrived br").hits == []  # two letters are not yet a prefix


@postgres_only
def test_matches_are_marked_in_a_snippet_that_keeps_the_text_as_written(world):
    body = "Hi! if a<b and c>d then the REFUNDS <script>alert(1)</script> should go out today"
    actions.post_reply(world.support_chat, by=world.erin, body=body)
    [hit] = search.messages(world.erin, "refund alert").hits
    assert marked(hit) == ["REFUNDS", "alert"]
    plain = "".join(s.text for s in hit.segments)
    assert "a<b and c>d" in plain and "<script>" in plain


@postgres_only
def test_a_query_of_only_stop_words_says_so(world):
    assert search.messages(world.alice, "the and").hits == []
    assert search.only_common_words("the and") is True
    assert search.only_common_words("refund") is False


@postgres_only
def test_the_search_uses_the_full_text_index(world):
    """The query reads the indexed column (migration 0004)."""
    # On a table this small the planner would rather scan; forbidding that leaves the index
    # as the only way to answer, if (and only if) the expressions match.
    rows = Message.objects.annotate(document=search.Document()).filter(document=search._ts_query("refund"))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = rows.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "msg_search_ru" in plan, plan


@postgres_only
def test_the_contact_lookup_uses_the_trigram_index(world):
    rows = Contact.objects.filter(search._ILike(search.ContactText(), Value("%kate%")))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = rows.query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "contact_search_trgm" in plan, plan


@postgres_only
@pytest.mark.parametrize(
    ("few", "surely_common"),
    [(2000, 50_000), (0, 50_000), (2000, -1)],
    ids=["few matches by id", "many: newest first", "common by the estimate"],
)
def test_each_way_of_walking_finds_the_same_pages(world, monkeypatch, few, surely_common):
    monkeypatch.setattr(search, "FEW_MATCHES", few)
    monkeypatch.setattr(search, "SURELY_COMMON", surely_common)
    for n in range(25):
        actions.post_reply(world.support_chat, by=world.erin, body=f"Parcel update number {n}")
    actions.post_reply(world.sales_chat, by=world.bob, body="Parcel for Sales")  # not Erin's
    first = search.messages(world.erin, "parcels")
    assert texts(first) == [f"Parcel update number {n}" for n in range(24, 4, -1)]
    assert texts(search.messages(world.erin, "parcels", before=first.next_before)) == [
        f"Parcel update number {n}" for n in range(4, -1, -1)
    ]
    assert search.messages(world.erin, "teleportation").hits == []


@postgres_only
def test_the_planner_settings_do_not_outlive_the_search(world):
    with transaction.atomic():  # as inside a caller's transaction
        search.messages(world.alice, "refund")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('enable_bitmapscan'), current_setting('enable_indexscan')")
            assert cursor.fetchone() == ("on", "on")


# --- Pages of results --------------------------------------------------------------------------


def test_results_come_a_page_at_a_time_newest_first(world):
    for n in range(25):
        actions.post_reply(world.support_chat, by=world.erin, body=f"Parcel update number {n}")
    first = search.messages(world.erin, "parcel")
    assert texts(first) == [f"Parcel update number {n}" for n in range(24, 4, -1)]
    second = search.messages(world.erin, "parcel", before=first.next_before)
    assert texts(second) == [f"Parcel update number {n}" for n in range(4, -1, -1)]
    assert second.next_before is None


# --- Contacts ----------------------------------------------------------------------------------


def test_contacts_are_found_by_name_email_or_phone_within_the_scope(world):
    contact = world.support_chat.contact
    actions.update_contact(contact, by=world.alice, name="Kate Petrova", email="kate@mail.test", phone="+7 900 1")
    for query in ("petrova", "KATE@mail", "900"):
        assert [(c.pk, c.latest_conversation_id) for c in search.contacts(world.erin, query)] == [
            (contact.pk, world.support_chat.pk)
        ]
    assert search.contacts(world.bob, "petrova") == []  # not a contact of any chat in Sales
    assert search.contacts(world.carol, "petrova") == []


# --- The page and the API ----------------------------------------------------------------------


def test_the_page_shows_marked_snippets_escaped_and_links_to_the_message(client, world):
    reply = actions.post_reply(world.support_chat, by=world.erin, body="<b>Refund</b> sent & confirmed")
    login(client, world.erin)
    response = client.get(reverse("web:search"), {"q": "refund"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "&lt;b&gt;" in html and "<b>Refund" not in html
    assert f"/inbox/{world.support_chat.pk}/?view=all&amp;status=open#message-{reply.pk}" in html
    assert html.count('data-testid="message-hit"') == 3
    if connection.vendor == "postgresql":
        assert "<mark>Refund</mark>" in html


def test_the_page_refuses_empty_and_overlong_queries_with_a_message(client, world):
    login(client, world.erin)
    assert client.get(reverse("web:search")).status_code == 200  # no query yet: the help text
    for bad in ({"q": "?!"}, {"q": "x" * 201}, {"q": "refund", "before": "abc"}):
        response = client.get(reverse("web:search"), bad)
        assert response.status_code == 400
        assert 'data-testid="search-error"' in response.content.decode()


def test_the_api_answers_hits_contacts_and_the_next_page(client, world):
    for n in range(3):
        actions.post_reply(world.support_chat, by=world.erin, body=f"refund step {n}")
    login(client, world.erin)
    body = client.get(API, {"q": "refund", "limit": 2}).json()
    assert [m["id"] for m in body["messages"]] == sorted((m["id"] for m in body["messages"]), reverse=True)
    assert len(body["messages"]) == 2 and body["next"] is not None
    first = body["messages"][0]
    assert first["conversation"]["id"] == world.support_chat.pk and first["author_name"] == "Erin"
    assert "".join(s["text"] for s in first["snippet"]) == "refund step 2"
    rest = client.get(body["next"]).json()
    assert rest["contacts"] == [] and rest["messages"][0]["id"] < body["messages"][-1]["id"]
    everything = client.get(API, {"q": "refund", "limit": 100}).json()
    assert len(everything["messages"]) == 5 and everything["next"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": ""}, "q"),
        ({"q": "..."}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"q": "a", "limit": 0}, "limit"),
        ({"q": "a", "limit": 101}, "limit"),
        ({"q": "a", "before": "x"}, "before"),
    ],
)
def test_the_api_refuses_bad_queries_naming_the_field(client, world, params, field):
    login(client, world.erin)
    response = client.get(API, params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_the_api_needs_no_more_queries_for_more_hits(client, world, django_assert_max_num_queries):
    login(client, world.alice)
    with django_assert_max_num_queries(24) as few:  # SETs and a savepoint included
        client.get(API, {"q": "refund"})
    for n in range(30):
        actions.post_reply(world.support_chat, by=world.erin, body=f"refund {n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(client.get(API, {"q": "refund"}).json()["messages"]) == 20
