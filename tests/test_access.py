"""The one gate: each scope sees exactly its conversations; other companies see nothing."""

from __future__ import annotations

import pytest
from django.http import Http404

from helpdesk.conversations import access, actions
from helpdesk.conversations.access import Viewer


def visible_ids(employee) -> set[int]:
    return set(access.visible_conversations(employee).values_list("pk", flat=True))


@pytest.fixture
def chats(cast):
    """One chat per situation: Sales (the cast's), Support, no team, and one assigned to Dave."""
    support = actions.receive_message(channel=cast.widget, external_contact_id="v-support", body="support").conversation
    actions.assign(support, by=cast.alice, team=cast.support)
    loose = actions.receive_message(channel=cast.widget, external_contact_id="v-loose", body="no team").conversation
    actions.assign(loose, by=cast.alice, team=None)
    daves = actions.receive_message(channel=cast.widget, external_contact_id="v-dave", body="dave").conversation
    actions.assign(daves, by=cast.alice, team=None, assignee=cast.dave)
    return {"sales": cast.conversation.pk, "support": support.pk, "loose": loose.pk, "daves": daves.pk}


def test_scope_all_sees_every_conversation_of_the_company(cast, chats):
    assert visible_ids(cast.alice) == set(chats.values())


def test_scope_teams_sees_its_teams_chats(cast, chats):
    assert visible_ids(cast.bob) == {chats["sales"]}
    assert visible_ids(cast.erin) == {chats["support"]}


def test_scope_assigned_sees_only_chats_assigned_to_them(cast, chats):
    assert visible_ids(cast.dave) == {chats["daves"]}


def test_a_chat_assigned_directly_is_visible_whatever_the_scope(cast, chats):
    loose = access.visible_conversations(cast.alice).get(pk=chats["loose"])
    actions.assign(loose, by=cast.alice, assignee=cast.erin)
    assert chats["loose"] in visible_ids(cast.erin)


def test_another_company_sees_none_of_them(cast, chats):
    assert visible_ids(cast.carol) == set()
    with pytest.raises(Http404):
        access.get_conversation(cast.carol, chats["sales"])


def test_missing_and_foreign_ids_answer_the_same(cast):
    with pytest.raises(Http404):
        access.get_conversation(cast.alice, 999_999)
    with pytest.raises(Http404):
        access.get_conversation(cast.alice, "not-a-number")


def test_a_deactivated_employee_sees_nothing(cast, chats):
    cast.alice.is_active = False
    cast.alice.save()
    assert visible_ids(cast.alice) == set()


@pytest.mark.parametrize("who", ["alice", "bob", "erin", "dave", "carol"])
def test_the_socket_filter_agrees_with_the_query_gate(cast, chats, who):
    """Viewer.sees (used on events, without a query) must give the same answers as the gate."""
    from helpdesk.conversations.models import Conversation
    from helpdesk.conversations.snapshots import conversation_summary

    employee = getattr(cast, who)
    viewer = Viewer.of(employee)
    for conversation in Conversation.objects.select_related("channel", "contact", "assignee"):
        expected = conversation.pk in visible_ids(employee)
        assert viewer.sees(conversation_summary(conversation)) == expected, (who, conversation.pk)


def test_socket_groups_follow_the_scope(cast):
    assert Viewer.of(cast.alice).groups() == [f"company-{cast.acme.pk}"]
    assert Viewer.of(cast.bob).groups() == [f"employee-{cast.bob.pk}", f"team-{cast.sales.pk}"]
    assert Viewer.of(cast.dave).groups() == [f"employee-{cast.dave.pk}"]
