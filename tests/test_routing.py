"""Automatic assignment, a test per rule: who is eligible, who is picked, the queue and its triggers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts import services
from helpdesk.accounts.models import AssignmentMethod, Employee, Presence, PresenceChange, Role, Scope
from helpdesk.conversations import actions, routing
from helpdesk.conversations.models import Conversation, Priority, Status
from helpdesk.errors import ActionError
from helpdesk.events.models import Event
from helpdesk.web.inbox_assignment import history
from tests.conftest import ACME_ORIGIN
from tests.helpers import event_types, last_event_id

ONLINE = Presence.ONLINE


def arrive(cast, visitor: str, *, channel=None) -> Conversation:
    """A customer writes: a new conversation, routed as it opens."""
    message = actions.receive_message(channel=channel or cast.widget, external_contact_id=visitor, body="Hello")
    return Conversation.objects.select_related("assignee", "team", "contact", "channel").get(pk=message.conversation_id)


def online(*employees: Employee) -> None:
    """As if each had just opened the inbox, without handing anything out (test setup only)."""
    Employee.objects.filter(pk__in=[e.pk for e in employees]).update(presence=ONLINE, last_seen_at=timezone.now())


def sales_agent(cast, name: str, **kwargs) -> Employee:
    return services.create_employee(
        company=cast.acme, email=f"{name.lower()}@acme.test", name=name, role="agent", teams=[cast.sales], **kwargs
    )


def assignee(conversation: Conversation) -> Employee | None:
    conversation.refresh_from_db()
    return conversation.assignee


def no_team_widget(cast):
    return services.create_widget_channel(company=cast.acme, name="Everyone", allowed_origins=[ACME_ORIGIN])


# --- Who is eligible ------------------------------------------------------------------------------------------


def test_a_new_conversation_goes_to_an_online_member_of_its_team_as_the_system(cast):
    online(cast.bob)
    mark = last_event_id()
    conversation = arrive(cast, "v2")
    assert conversation.assignee == cast.bob
    # The queue goes first (the cast's chat waited longer), then the newcomer.
    assert assignee(cast.conversation) == cast.bob
    assigned = Event.objects.get(id__gt=mark, type="conversation.assigned", conversation=conversation)
    assert assigned.actor is None and assigned.payload["automatic"] is True
    assert assigned.payload["previous"]["assignee_id"] is None
    assert event_types(conversation) == ["conversation.created", "message.created", "conversation.assigned"]
    cast.bob.refresh_from_db()
    assert cast.bob.last_assigned_at is not None


def test_with_nobody_online_it_waits_in_the_queue(cast):
    conversation = arrive(cast, "v2")
    assert conversation.assignee is None
    assert routing.pick_agent(conversation) is None
    assert list(routing.queue(cast.acme.pk)) == [cast.conversation, conversation]


@pytest.mark.parametrize("state", ["away", "offline", "stale heartbeat", "deactivated", "no reply permission"])
def test_who_is_not_eligible(cast, state):
    online(cast.bob)
    if state in ("away", "offline"):
        Employee.objects.filter(pk=cast.bob.pk).update(presence=state)
    elif state == "stale heartbeat":
        Employee.objects.filter(pk=cast.bob.pk).update(last_seen_at=timezone.now() - timedelta(minutes=5))
    elif state == "deactivated":
        admin_actions.deactivate_employee(cast.bob, by=cast.alice)
    else:
        watcher = Role.objects.create(company=cast.acme, name="Watcher", scope=Scope.TEAMS, permissions=["add_notes"])
        Employee.objects.filter(pk=cast.bob.pk).update(role=watcher)
    assert arrive(cast, "v2").assignee is None


def test_only_members_of_the_conversations_team_are_picked(cast):
    online(cast.erin, cast.alice)  # Support and an admin of no team: not Sales
    assert arrive(cast, "v2").assignee is None


def test_a_conversation_without_a_team_goes_to_anyone_in_the_company(cast):
    online(cast.erin)
    assert arrive(cast, "v2", channel=no_team_widget(cast)).assignee == cast.erin


def test_other_companies_agents_are_never_picked(cast):
    online(cast.carol)
    assert arrive(cast, "v2", channel=no_team_widget(cast)).assignee is None


# --- Who is picked ----------------------------------------------------------------------------------------------


def test_balanced_picks_the_fewest_open_and_snoozed_or_resolved_ones_do_not_count(cast):
    nina = sales_agent(cast, "Nina")
    for visitor, to in (("b1", cast.bob), ("b2", cast.bob), ("n1", nina)):
        conversation = arrive(cast, visitor)
        actions.assign(conversation, by=cast.alice, assignee=to)
    # Bob has 2 open, Nina 1: Nina.
    online(cast.bob, nina)
    assert routing.pick_agent(cast.conversation) == nina
    # One of Bob's is snoozed, the other resolved: he has 0 open now.
    bobs = list(Conversation.objects.filter(assignee=cast.bob))
    Conversation.objects.filter(pk=bobs[0].pk).update(status=Status.SNOOZED)
    Conversation.objects.filter(pk=bobs[1].pk).update(status=Status.RESOLVED)
    assert routing.pick_agent(cast.conversation) == cast.bob


def test_balanced_ties_go_to_whoever_was_assigned_least_recently_never_first(cast):
    nina, olga = sales_agent(cast, "Nina"), sales_agent(cast, "Olga")
    now = timezone.now()
    Employee.objects.filter(pk=cast.bob.pk).update(last_assigned_at=now - timedelta(minutes=1))
    Employee.objects.filter(pk=nina.pk).update(last_assigned_at=now - timedelta(minutes=5))
    online(cast.bob, nina)
    assert routing.pick_agent(cast.conversation) == nina
    online(olga)  # never assigned: before anyone who was
    assert routing.pick_agent(cast.conversation) == olga


def test_balanced_spreads_arrivals_evenly(cast):
    nina = sales_agent(cast, "Nina")
    online(cast.bob, nina)
    actions.hand_out(cast.acme.pk)
    picked = [arrive(cast, f"v{i}").assignee for i in range(5)]
    counts = {e: picked.count(e) + (e == assignee(cast.conversation)) for e in (cast.bob, nina)}
    assert sorted(counts.values()) == [3, 3]


def test_round_robin_takes_turns_whatever_the_load(cast):
    admin_actions.update_team(cast.sales, by=cast.alice, assignment_method=AssignmentMethod.ROUND_ROBIN)
    nina = sales_agent(cast, "Nina")
    for visitor in ("n1", "n2", "n3"):
        actions.assign(arrive(cast, visitor), by=cast.alice, assignee=nina)
    now = timezone.now()
    Employee.objects.filter(pk=cast.bob.pk).update(last_assigned_at=now)
    Employee.objects.filter(pk=nina.pk).update(last_assigned_at=now - timedelta(hours=1))
    online(cast.bob, nina)
    # Nina has 3 open and Bob none, but her turn came longest ago.
    actions.hand_out(cast.acme.pk)
    assert assignee(cast.conversation) == nina
    assert [arrive(cast, v).assignee for v in ("r1", "r2", "r3")] == [cast.bob, nina, cast.bob]


def test_manual_teams_never_assign_and_their_conversations_wait(cast):
    admin_actions.update_team(cast.sales, by=cast.alice, assignment_method=AssignmentMethod.MANUAL)
    online(cast.bob)
    conversation = arrive(cast, "v2")
    assert conversation.assignee is None
    assert conversation not in routing.queue(cast.acme.pk)  # waits for a person, not for routing
    # Switching the team to automatic hands out what waits, in order.
    admin_actions.update_team(cast.sales, by=cast.alice, assignment_method=AssignmentMethod.BALANCED)
    assert assignee(cast.conversation) == assignee(conversation) == cast.bob


# --- Capacity -------------------------------------------------------------------------------------------------------


def test_an_agent_at_capacity_gets_nothing_more(cast):
    Employee.objects.filter(pk=cast.bob.pk).update(capacity=1)
    online(cast.bob)
    actions.hand_out(cast.acme.pk)
    assert assignee(cast.conversation) == cast.bob
    assert arrive(cast, "v2").assignee is None


def test_a_capacity_of_zero_takes_nobody_off_the_queue(cast):
    Employee.objects.filter(pk=cast.bob.pk).update(capacity=0)
    online(cast.bob)
    assert actions.hand_out(cast.acme.pk) == []


def test_the_teams_limit_counts_that_teams_conversations_only(cast):
    admin_actions.update_team(cast.sales, by=cast.alice, max_open_per_agent=1)
    admin_actions.update_employee(cast.bob, by=cast.alice, teams=[cast.sales, cast.support])
    online(cast.bob)
    actions.hand_out(cast.acme.pk)
    assert assignee(cast.conversation) == cast.bob  # his one Sales chat
    assert arrive(cast, "v2").assignee is None  # Sales: at the team's limit
    support_widget = services.create_widget_channel(
        company=cast.acme, name="Support site", team=cast.support, allowed_origins=[ACME_ORIGIN]
    )
    assert arrive(cast, "v3", channel=support_widget).assignee == cast.bob  # Support has no limit


# --- The queue and what hands it out ----------------------------------------------------------------------------


def test_the_queue_goes_by_priority_then_waiting_longest(cast):
    low, urgent_old, urgent_new, none = (arrive(cast, v) for v in ("low", "urg1", "urg2", "none"))
    for conversation, priority in ((low, Priority.LOW), (urgent_old, Priority.URGENT), (urgent_new, Priority.URGENT)):
        actions.set_priority(conversation, by=cast.alice, priority=priority)
    Conversation.objects.filter(pk=urgent_old.pk).update(waiting_since=timezone.now() - timedelta(hours=1))
    # The cast's first chat waits longer than "none": same priority, earlier.
    assert list(routing.queue(cast.acme.pk)) == [urgent_old, urgent_new, low, cast.conversation, none]


def test_an_agent_coming_online_takes_the_head_of_the_queue_and_it_is_recorded(cast):
    Employee.objects.filter(pk=cast.bob.pk).update(capacity=1)
    urgent = arrive(cast, "v2")
    actions.set_priority(urgent, by=cast.alice, priority=Priority.URGENT)
    admin_actions.set_presence(cast.bob, presence=ONLINE)
    assert (assignee(urgent), assignee(cast.conversation)) == (cast.bob, None)
    change = PresenceChange.objects.get(employee=cast.bob)
    assert (change.presence, change.source, change.company_id) == (ONLINE, "manual", cast.acme.pk)


@pytest.mark.parametrize("how", ["resolve", "snooze", "reassign", "delete"])
def test_freeing_a_place_hands_out_the_queue(cast, how):
    Employee.objects.filter(pk=cast.bob.pk).update(capacity=1)
    online(cast.bob)
    actions.hand_out(cast.acme.pk)
    waiting = arrive(cast, "v2")
    assert (assignee(cast.conversation), waiting.assignee) == (cast.bob, None)
    if how == "resolve":
        actions.resolve(cast.conversation, by=cast.bob)
    elif how == "snooze":
        actions.snooze(cast.conversation, by=cast.bob, until=timezone.now() + timedelta(hours=1))
    elif how == "reassign":
        actions.assign(cast.conversation, by=cast.alice, assignee=cast.alice)
    else:
        actions.delete_conversation(cast.conversation, by=cast.alice)
    assert assignee(waiting) == cast.bob


def test_raising_capacity_hands_out_the_queue(cast):
    Employee.objects.filter(pk=cast.bob.pk).update(capacity=0)
    online(cast.bob)
    second = arrive(cast, "v2")
    admin_actions.update_employee(cast.bob, by=cast.alice, capacity=1)
    assert (assignee(cast.conversation), assignee(second)) == (cast.bob, None)  # oldest first, then full


def test_unassigning_puts_the_conversation_back_in_the_queue(cast):
    online(cast.erin)
    widget = no_team_widget(cast)
    conversation = arrive(cast, "v2", channel=widget)
    assert conversation.assignee == cast.erin
    Employee.objects.filter(pk=cast.erin.pk).update(presence=Presence.AWAY)
    actions.assign(conversation, by=cast.alice, assignee=None)
    assert assignee(conversation) is None and conversation in routing.queue(cast.acme.pk)


def test_a_reopened_or_woken_conversation_nobody_has_is_routed(cast):
    actions.resolve(cast.conversation, by=cast.alice)
    online(cast.bob)
    actions.receive_message(channel=cast.widget, external_contact_id="visitor-1", body="One more thing")
    assert assignee(cast.conversation) == cast.bob


def test_deactivating_an_agent_gives_their_open_and_snoozed_chats_back(cast):
    online(cast.bob)
    actions.assign(cast.conversation, by=cast.alice, assignee=cast.bob)
    waiting = arrive(cast, "v2")
    snoozed = arrive(cast, "v3")
    resolved = arrive(cast, "v4")
    assert {assignee(c) for c in (waiting, snoozed, resolved)} == {cast.bob}
    actions.snooze(snoozed, by=cast.bob, until=timezone.now() + timedelta(hours=1))
    actions.resolve(resolved, by=cast.bob)
    cleo = sales_agent(cast, "Cleo")
    online(cleo)
    mark = last_event_id()

    gone = admin_actions.deactivate_employee(cast.bob, by=cast.alice)

    assert sorted(gone.released_conversation_ids) == sorted([cast.conversation.pk, waiting.pk, snoozed.pk])
    # The open ones went straight to the queue and on to Cleo, the one left in Sales.
    assert (assignee(cast.conversation), assignee(waiting)) == (cleo, cleo)
    assert assignee(snoozed) is None  # routed when it wakes
    assert assignee(resolved) == cast.bob  # the record of who closed it stays
    released = Event.objects.filter(id__gt=mark, type="conversation.assigned", payload__reason="released")
    assert {(e.conversation_id, e.actor_id) for e in released} == {
        (c.pk, cast.alice.pk) for c in (cast.conversation, waiting, snoozed)
    }
    # The thread's history says why, not just "Alice unassigned this".
    assert [item["released"] for item in history(waiting)][-2:] == [True, False]  # then Cleo, automatically
    actions.wake(snoozed, by=cast.alice)
    assert assignee(snoozed) == cleo


def test_deactivating_someone_with_nothing_open_releases_nothing(cast):
    gone = admin_actions.deactivate_employee(cast.erin, by=cast.alice)
    assert gone.released_conversation_ids == []
    assert assignee(cast.conversation) is None


# --- Reassigning by hand ---------------------------------------------------------------------------------------------


def test_moving_to_a_team_with_automatic_assignment_routes_it_within_that_team(cast):
    online(cast.erin, cast.bob)
    actions.assign(cast.conversation, by=cast.alice, assignee=cast.bob)
    mark = last_event_id()
    actions.assign(cast.conversation, by=cast.alice, team=cast.support, assignee=None)
    assert (assignee(cast.conversation), cast.conversation.team) == (cast.erin, cast.support)
    moved, routed = Event.objects.filter(id__gt=mark).order_by("id")
    assert (moved.type, moved.actor, moved.payload["previous"]["assignee_id"]) == (
        "conversation.assigned",
        cast.alice,
        cast.bob.pk,
    )
    assert (routed.actor, routed.payload["automatic"]) == (None, True)


def test_choosing_an_agent_with_the_team_keeps_that_agent(cast):
    online(cast.erin, cast.bob)
    Employee.objects.filter(pk=cast.bob.pk).update(last_assigned_at=None)
    nadia = services.create_employee(
        company=cast.acme, email="nadia@acme.test", name="Nadia", role="agent", teams=[cast.support]
    )
    actions.assign(cast.conversation, by=cast.alice, team=cast.support, assignee=nadia)  # offline, still chosen
    assert assignee(cast.conversation) == nadia


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("carol", "foreign_employee"),
        ("erin", "not_in_team"),
        ("inactive", "inactive_employee"),
        ("watcher", "cannot_reply"),
    ],
)
def test_manual_reassignment_is_refused_to_the_wrong_person_and_changes_nothing(cast, who, code):
    target = getattr(cast, who, None)
    if who == "inactive":
        target = sales_agent(cast, "Ivan")
        admin_actions.deactivate_employee(target, by=cast.alice)
    elif who == "watcher":
        watcher = Role.objects.create(company=cast.acme, name="Watcher", scope=Scope.TEAMS, permissions=["add_notes"])
        target = services.create_employee(
            company=cast.acme, email="w@acme.test", name="Wendy", role=watcher, teams=[cast.sales]
        )
    mark = last_event_id()
    with pytest.raises(ActionError) as refused:
        actions.assign(cast.conversation, by=cast.alice, team=cast.sales, assignee=target)
    assert refused.value.code == code
    assert assignee(cast.conversation) is None and event_types(after=mark) == []
