"""Quick answers: the matcher, configuring rules, and the automatic reply in receive_message."""

from __future__ import annotations

import pytest

from helpdesk.conversations import actions, quick_answers
from helpdesk.conversations.models import Direction, Message, QuickAnswer, Status
from helpdesk.conversations.quick_answers import explain, normalise
from helpdesk.errors import ActionError
from helpdesk.events.models import AuditEntry
from tests.conftest import login
from tests.helpers import event_types, last_event_id


def rule(pk: int, *triggers: str, answer: str = "An answer") -> QuickAnswer:
    return QuickAnswer(pk=pk, title=f"Rule {pk}", triggers=list(triggers), answer=answer)


# --- The matcher ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hello,   WORLD!!! ", "hello world"),
        ("Ёлки-палки… ЕЩЁ?", "елки палки еще"),
        ("What's up?", "what s up"),
        ("Straße", "strasse"),
        ("🙂👍", ""),
    ],
)
def test_normalising_ignores_case_punctuation_spacing_and_yo(text, expected):
    assert normalise(text) == expected


def test_the_whole_message_being_the_phrase_is_an_exact_match():
    match = explain([rule(1, "Delivery time")], "delivery TIME?!").match
    assert (match.how, match.score, match.normalised_trigger) == ("exact", 1.0, "delivery time")


@pytest.mark.parametrize(
    "text",
    [
        "Hi! What is your delivery time, please?",
        "Здравствуйте, подскажите СРОКИ ДОСТАВКИ в Казань",
    ],
)
def test_a_phrase_inside_a_longer_message_matches(text):
    match = explain([rule(1, "delivery time", "сроки доставки")], text).match
    assert match is not None and match.how == "contained" and match.score == 1.0


def test_a_phrase_matches_whole_words_only():
    # "art" inside "cartoons" is not the word "art": only similarity could count, and it is too low.
    verdict = explain([rule(1, "art")], "I like cartoons")
    assert verdict.match is None and verdict.candidates[0].how == "similar"


@pytest.mark.parametrize(
    ("text", "trigger"),
    [
        ("What are your openng hours?", "opening hours"),  # a letter missing
        ("how do i retrun an item", "return an item"),  # two letters swapped
        ("Какие у вас чсы работы?", "часы работы"),
        ("подскажите стоимость доствки пожалуйста", "стоимость доставки"),
    ],
)
def test_typos_are_forgiven_in_english_and_russian(text, trigger):
    match = explain([rule(1, trigger)], text, threshold=0.85).match
    assert match is not None and match.how == "similar"
    assert 0.85 <= match.score < 1


def test_a_different_question_stays_below_the_threshold_and_says_how_close_it_was():
    verdict = explain([rule(1, "opening hours")], "when do you open?", threshold=0.85)
    assert verdict.match is None
    [closest] = verdict.candidates
    assert closest.how == "similar" and closest.score < 0.85 and not closest.fires


def test_the_threshold_comes_from_the_setting(settings):
    settings.QUICK_ANSWER_SIMILARITY = 0.99
    assert explain([rule(1, "opening hours")], "openng hours").match is None
    settings.QUICK_ANSWER_SIMILARITY = 0.8
    assert explain([rule(1, "opening hours")], "openng hours").match is not None


def test_the_best_rule_wins_exact_before_contained_then_the_more_specific_then_the_older():
    rules = [rule(1, "delivery"), rule(2, "delivery time"), rule(3, "delivery time")]
    # Both contain-matches score 1; the longer trigger is more specific; of equals, the older rule.
    assert explain(rules, "what is the delivery time").match.rule.pk == 2
    assert explain(rules, "delivery").match.rule.pk == 1  # exact beats contained
    assert [c.rule.pk for c in explain(rules, "delivery time").candidates] == [2, 3, 1]


def test_a_long_message_is_searched_by_runs_of_words_as_long_as_the_trigger():
    text = "Hello there. " * 30 + "By the way, what are your opening hourz on Sunday?"
    match = explain([rule(1, "opening hours")], text).match
    assert match is not None and match.matched == "opening hourz"


def test_nothing_comparable_is_no_match():
    assert explain([rule(1, "hello")], "!!!").match is None
    assert explain([], "hello").match is None


# --- Configuring rules --------------------------------------------------------------------------------------


def test_trigger_lines_are_trimmed_blank_lines_dropped_and_repeats_merged():
    assert quick_answers.clean_triggers("  Opening hours \n\n  \nOPENING HOURS!\nwhen are you open") == [
        "Opening hours",
        "when are you open",
    ]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"triggers": ""}, "no_triggers"),
        ({"triggers": "\n   \n"}, "no_triggers"),
        ({"triggers": "hours\n???"}, "empty_trigger"),
        ({"answer": "   "}, "no_answer"),
        ({"title": ""}, "no_title"),
        ({"triggers": "x" * 201}, "trigger_too_long"),
    ],
)
def test_bad_rules_are_refused_with_a_clear_message_and_nothing_is_saved(cast, fields, code):
    data = {"title": "Hours", "triggers": "opening hours", "answer": "9 to 6", **fields}
    with pytest.raises(ActionError) as refused:
        quick_answers.create_quick_answer(by=cast.alice, **data)
    assert refused.value.code == code and refused.value.message
    assert not QuickAnswer.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="quick_answer").exists()


def test_an_agent_may_not_configure_quick_answers(cast):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        quick_answers.create_quick_answer(by=cast.bob, title="Hours", triggers="hours", answer="9 to 6")


def test_creating_editing_and_archiving_a_rule_is_audited(cast):
    created = quick_answers.create_quick_answer(by=cast.alice, title="Hours", triggers="opening hours", answer="9-6")
    quick_answers.update_quick_answer(
        created,
        by=cast.alice,
        title="Hours",
        triggers="opening hours\nwhen open",
        answer="9-6",
        resolves=True,
        enabled=True,
    )
    quick_answers.archive_quick_answer(created, by=cast.alice)
    entries = list(AuditEntry.objects.filter(object_type="quickanswer").order_by("id"))
    assert [e.action for e in entries] == ["quick_answer.created", "quick_answer.updated", "quick_answer.archived"]
    assert entries[1].after == {"triggers": ["opening hours", "when open"], "resolves": True}
    with pytest.raises(ActionError):
        quick_answers.update_quick_answer(
            created, by=cast.alice, title="Hours", triggers="x", answer="y", resolves=False, enabled=True
        )


# --- Answering in receive_message ------------------------------------------------------------------------------


def hours_rule(cast, **extra) -> QuickAnswer:
    data = {"title": "Hours", "triggers": "opening hours\nчасы работы", "answer": "We work 9 to 6.", **extra}
    return quick_answers.create_quick_answer(by=cast.alice, **data)


def write(cast, body: str, visitor: str = "visitor-2") -> Message:
    return actions.receive_message(channel=cast.widget, external_contact_id=visitor, body=body)


def replies(conversation) -> list[Message]:
    return list(conversation.messages.filter(direction=Direction.OUTBOUND).order_by("pk"))


def test_a_matching_first_message_is_answered_automatically_and_stays_open_for_an_agent(cast):
    hours_rule(cast)
    mark = last_event_id()
    message = write(cast, "Какие у вас чсы работы?")
    conversation = message.conversation
    [reply] = replies(conversation)
    assert (reply.body, reply.automatic, reply.author_employee_id, reply.kind) == (
        "We work 9 to 6.",
        True,
        None,
        "message",
    )
    assert event_types(after=mark) == ["conversation.created", "message.created", "message.created"]
    conversation.refresh_from_db()
    # Not settled by the rule: open, unassigned, still waiting for a person.
    assert (conversation.status, conversation.assignee_id) == (Status.OPEN, None)
    assert conversation.waiting_since is not None and conversation.last_message_preview == "We work 9 to 6."


def test_a_rule_that_resolves_settles_the_conversation_as_the_system(cast):
    hours_rule(cast, resolves=True)
    mark = last_event_id()
    conversation = write(cast, "opening hours?").conversation
    conversation.refresh_from_db()
    assert conversation.status == Status.RESOLVED and conversation.waiting_since is None
    assert event_types(after=mark)[-1] == "conversation.resolved"
    from helpdesk.events.models import Event

    resolved = Event.objects.get(type="conversation.resolved", conversation=conversation)
    assert resolved.actor_id is None and resolved.payload["quick_answer"]["title"] == "Hours"


def test_the_reply_event_says_which_rule_answered_and_why(cast):
    hours_rule(cast)
    write(cast, "openng hours")
    from helpdesk.events.models import Event

    event = Event.objects.filter(type="message.created").order_by("-id").first()
    assert event.payload["message"]["automatic"] is True
    assert event.payload["quick_answer"]["trigger"] == "opening hours"
    assert event.payload["quick_answer"]["how"] == "similar"


def test_once_a_person_has_replied_the_quick_answer_keeps_quiet(cast):
    hours_rule(cast)
    actions.post_reply(cast.conversation, by=cast.bob, body="Hello! How can I help?")
    write(cast, "and your opening hours?", visitor="visitor-1")
    assert [m.automatic for m in replies(cast.conversation)] == [False]


def test_it_never_sends_the_same_answer_twice_in_a_row(cast):
    hours_rule(cast)
    conversation = write(cast, "opening hours").conversation
    write(cast, "OPENING HOURS!!!")
    assert len(replies(conversation)) == 1


def test_a_customer_reopening_a_resolved_conversation_may_be_answered_again(cast):
    hours_rule(cast)
    actions.post_reply(cast.conversation, by=cast.bob, body="Anything else?")
    actions.resolve(cast.conversation, by=cast.bob)
    write(cast, "часы работы?", visitor="visitor-1")
    assert [m.automatic for m in replies(cast.conversation)] == [False, True]


def test_rules_that_are_off_archived_or_another_companys_never_answer(cast):
    hours_rule(cast, enabled=False)
    archived = hours_rule(cast, title="Old")
    quick_answers.archive_quick_answer(archived, by=cast.alice)
    quick_answers.create_quick_answer(by=cast.carol, title="Globex", triggers="opening hours", answer="Globex hours")
    conversation = write(cast, "opening hours").conversation
    assert replies(conversation) == []


def test_placeholders_in_the_answer_are_filled_for_the_contact(cast):
    hours_rule(cast, answer="{{contact.first_name}}, {{company.name}} works 9 to 6.")
    anna = actions.receive_message(
        channel=cast.widget,
        external_contact_id="anna",
        body="opening hours",
        contact_defaults={"name": "Anna Petrova"},
    )
    assert replies(anna.conversation)[0].body == "Anna, Acme works 9 to 6."
    nameless = write(cast, "opening hours", visitor="nameless")
    assert replies(nameless.conversation)[0].body == "Acme works 9 to 6."


# --- Settings pages ------------------------------------------------------------------------------------------


def test_an_admin_adds_a_quick_answer_on_the_page(client, cast):
    login(client, cast.alice)
    response = client.post(
        "/settings/quick-answers/new/",
        {"title": "Hours", "triggers": "opening hours\n\nчасы работы\n", "answer": "9 to 6", "enabled": "on"},
    )
    assert response.status_code == 302
    saved = QuickAnswer.objects.get()
    assert (saved.triggers, saved.resolves, saved.enabled) == (["opening hours", "часы работы"], False, True)
    listing = client.get("/settings/quick-answers/")
    assert "Hours" in listing.content.decode()


@pytest.mark.parametrize(
    ("triggers", "answer", "message"),
    [
        ("\n \n", "9 to 6", "Add at least one trigger phrase"),
        ("opening hours", "", "Write the answer the customer gets."),
        ("hours\n!!!", "9 to 6", "has no letters or digits"),
    ],
)
def test_the_page_refuses_bad_input_and_saves_nothing(client, cast, triggers, answer, message):
    login(client, cast.alice)
    response = client.post("/settings/quick-answers/new/", {"title": "Hours", "triggers": triggers, "answer": answer})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not QuickAnswer.objects.exists()


def test_editing_on_the_page_keeps_the_rule_when_the_input_is_bad(client, cast):
    saved = hours_rule(cast)
    login(client, cast.alice)
    url = f"/settings/quick-answers/{saved.pk}/"
    assert "opening hours\nчасы работы" in client.get(url).content.decode()
    response = client.post(url, {"title": "Hours", "triggers": "", "answer": "changed"})
    assert response.status_code == 200
    saved.refresh_from_db()
    assert saved.answer == "We work 9 to 6."
    client.post(url, {"title": "Hours", "triggers": "hours", "answer": "changed", "resolves": "on"})
    saved.refresh_from_db()
    assert (saved.triggers, saved.answer, saved.resolves, saved.enabled) == (["hours"], "changed", True, False)


def test_archiving_on_the_page_takes_it_out_of_the_list(client, cast):
    saved = hours_rule(cast)
    login(client, cast.alice)
    client.post(f"/settings/quick-answers/{saved.pk}/archive/")
    saved.refresh_from_db()
    assert saved.archived_at is not None
    assert "We work" not in client.get("/settings/quick-answers/").content.decode()
    assert client.get(f"/settings/quick-answers/{saved.pk}/").status_code == 404


def test_another_companys_rule_is_a_404(client, cast):
    theirs = quick_answers.create_quick_answer(by=cast.carol, title="Globex", triggers="x", answer="y")
    login(client, cast.alice)
    assert client.get(f"/settings/quick-answers/{theirs.pk}/").status_code == 404
    assert client.post(f"/settings/quick-answers/{theirs.pk}/archive/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.archived_at is None


def test_the_test_page_shows_which_rule_fires_and_why(client, cast):
    hours_rule(cast)
    quick_answers.create_quick_answer(by=cast.alice, title="Refunds", triggers="refund", answer="Sure")
    login(client, cast.alice)
    response = client.get("/settings/quick-answers/test/", {"phrase": "Какие у вас ЧСЫ работы?!"})
    page = response.content.decode()
    assert response.context["verdict"].match.rule.title == "Hours"
    assert "какие у вас чсы работы" in page  # the normalised message
    assert "часы работы" in page and "85%" in page  # the trigger it matched, against the threshold
    [hours, refunds] = response.context["rows"]
    assert hours["candidate"].fires and hours["percent"] == 95
    assert not refunds["candidate"].fires


def test_the_test_page_says_when_no_rule_fires(client, cast):
    hours_rule(cast)
    login(client, cast.alice)
    response = client.get("/settings/quick-answers/test/", {"phrase": "do you deliver to Kazan?"})
    assert response.context["verdict"].match is None
    assert 'data-testid="verdict-none"' in response.content.decode()


def test_the_test_page_refuses_an_empty_phrase(client, cast):
    login(client, cast.alice)
    response = client.get("/settings/quick-answers/test/", {"phrase": ""})
    assert response.context["verdict"] is None and response.context["form"].errors
