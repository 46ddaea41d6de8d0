"""Routing under real concurrency: many transactions at once on PostgreSQL, each routing its chat.

Each arrival is `actions.receive_message` in a thread of its own, on its own connection, all
released together by a barrier. Nothing here is mocked: the row locks, the routing lock and
the counts are PostgreSQL's.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

import pytest
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts import services
from helpdesk.accounts.models import Employee, Presence
from helpdesk.conversations import actions, routing
from helpdesk.conversations.models import Conversation, Priority
from helpdesk.events.models import Event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ARRIVALS = 200
AGENTS = 10
THREADS = 16


@pytest.fixture(autouse=True)
def _postgresql():
    if connection.vendor != "postgresql":
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run on PostgreSQL: concurrent routing is under test")
        pytest.skip("PostgreSQL-only: concurrent transactions and row locks")


def crew(cast, *, capacity: int, count: int = AGENTS, online: bool = True, name: str = "agent") -> list[Employee]:
    """Sales agents; online ones as if their inbox were open."""
    agents = [
        services.create_employee(
            company=cast.acme,
            email=f"{name}{i}@acme.test",
            name=f"{name.title()} {i:02d}",
            role="agent",
            teams=[cast.sales],
            capacity=capacity,
        )
        for i in range(count)
    ]
    if online:
        Employee.objects.filter(pk__in=[a.pk for a in agents]).update(
            presence=Presence.ONLINE, last_seen_at=timezone.now()
        )
    return agents


def arrive_concurrently(widget, visitors: list[str]) -> list[Conversation]:
    """Every visitor writes at the same moment, from THREADS threads with a connection each."""
    start = threading.Barrier(THREADS)
    failures: list[BaseException] = []

    def work(chunk: list[str]) -> None:
        try:
            start.wait()
            for visitor in chunk:
                actions.receive_message(channel=widget, external_contact_id=visitor, body="Hello!")
        except BaseException as error:  # a deadlock or a lock timeout would land here
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(visitors[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    return list(Conversation.objects.filter(channel=widget, contact__identities__external_id__in=visitors))


def assigned_events(conversations: list[Conversation]) -> Counter:
    rows = (
        Event.objects.filter(type="conversation.assigned", conversation__in=conversations)
        .values("conversation_id")
        .annotate(n=Count("pk"))
    )
    return Counter({row["conversation_id"]: row["n"] for row in rows})


def test_200_concurrent_arrivals_are_each_assigned_once_evenly_and_within_capacity(tcast):
    actions.resolve(tcast.conversation, by=tcast.alice)  # an empty queue to start from
    agents = crew(tcast, capacity=25)
    conversations = arrive_concurrently(tcast.widget, [f"v{i}" for i in range(ARRIVALS)])

    assert len(conversations) == ARRIVALS
    assert all(c.assignee_id in {a.pk for a in agents} for c in conversations)
    # Exactly one assignment each, and the event says what the row says.
    events = assigned_events(conversations)
    assert set(events.values()) == {1} and len(events) == ARRIVALS
    for event in Event.objects.filter(type="conversation.assigned", conversation__in=conversations):
        assert event.payload["conversation"]["assignee_id"] == next(
            c.assignee_id for c in conversations if c.pk == event.conversation_id
        )
    loads = Counter(c.assignee_id for c in conversations)
    assert max(loads.values()) <= 25
    assert max(loads.values()) - min(loads.values()) <= 1 and len(loads) == AGENTS


def test_past_capacity_arrivals_wait_in_order_and_are_handed_out_as_room_appears(tcast):
    actions.resolve(tcast.conversation, by=tcast.alice)
    agents = crew(tcast, capacity=5)
    conversations = arrive_concurrently(tcast.widget, [f"v{i}" for i in range(ARRIVALS)])

    assigned = [c for c in conversations if c.assignee_id]
    assert len(assigned) == AGENTS * 5
    assert Counter(c.assignee_id for c in assigned) == dict.fromkeys((a.pk for a in agents), 5)
    assert set(assigned_events(conversations).values()) == {1} and len(assigned_events(conversations)) == 50

    # The 150 waiting: give some a priority; the queue is highest priority, then waiting longest.
    waiting = [c for c in conversations if not c.assignee_id]
    for i, conversation in enumerate(waiting):
        if i % 7 == 0:
            actions.set_priority(conversation, by=tcast.alice, priority=Priority.URGENT)
        elif i % 3 == 0:
            actions.set_priority(conversation, by=tcast.alice, priority=Priority.HIGH)
    rows = list(Conversation.objects.filter(pk__in=[c.pk for c in waiting]))
    expected = [c.pk for c in sorted(rows, key=lambda c: (-c.priority, c.waiting_since, c.created_at, c.pk))]
    assert [c.pk for c in routing.queue(tcast.acme.pk)] == expected
    assert len(expected) == ARRIVALS - 50

    def assignee_of(pk: int) -> int | None:
        return Conversation.objects.values_list("assignee_id", flat=True).get(pk=pk)

    # An agent resolves one: the head of the queue is theirs.
    first = agents[0]
    actions.resolve(Conversation.objects.filter(assignee=first).first(), by=first)
    assert (assignee_of(expected[0]), assignee_of(expected[1])) == (first.pk, None)
    # Capacity raised by 3: the next three.
    admin_actions.update_employee(agents[1], by=tcast.alice, capacity=8)
    assert [assignee_of(pk) for pk in expected[1:5]] == [agents[1].pk] * 3 + [None]
    # A newcomer comes online with room for 5: the next five.
    [late] = crew(tcast, capacity=5, count=1, online=False, name="late")
    admin_actions.set_presence(late, presence=Presence.ONLINE)
    assert [assignee_of(pk) for pk in expected[4:10]] == [late.pk] * 5 + [None]
    # Nobody went past their capacity.
    loads = Counter(Conversation.objects.filter(status="open").values_list("assignee_id", flat=True))
    assert all(loads[a.pk] <= 5 for a in agents if a != agents[1]) and loads[agents[1].pk] == 8
