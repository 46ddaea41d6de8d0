"""Presence: set by hand, by opening the inbox, and automatically away; recorded, and live for colleagues."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.utils import timezone

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts import presence
from helpdesk.accounts.models import Employee, Presence, PresenceChange
from helpdesk.accounts.tasks import mark_idle_employees_away
from helpdesk.conversations.tasks import hand_out_queued_conversations
from helpdesk.errors import ActionError
from smartchat.celery import app
from tests.helpers import count_queries
from tests.test_sockets import QUIET, connected_inbox, inbox_socket

ONLINE, AWAY, OFFLINE = Presence.ONLINE, Presence.AWAY, Presence.OFFLINE


@pytest.fixture
async def layer():
    """The channel layer, emptied afterwards (the Redis layer outlives a test)."""
    yield
    channel_layer = get_channel_layer()
    if hasattr(channel_layer, "flush"):
        await channel_layer.flush()


def changes(employee) -> list[tuple[str, str]]:
    return list(PresenceChange.objects.filter(employee=employee).order_by("pk").values_list("presence", "source"))


def presence_of(employee) -> str:
    return Employee.objects.get(pk=employee.pk).presence


def idle(employee, seconds: int = 600) -> None:
    """As if their last inbox heartbeat were this long ago."""
    Employee.objects.filter(pk=employee.pk).update(last_seen_at=timezone.now() - timedelta(seconds=seconds))


# --- The rules -------------------------------------------------------------------------------------------------


def test_opening_the_inbox_makes_an_offline_employee_online(cast):
    admin_actions.presence_from_inbox(cast.bob.pk, connecting=True)
    assert presence_of(cast.bob) == ONLINE
    assert changes(cast.bob) == [(ONLINE, "connection")]
    admin_actions.presence_from_inbox(cast.bob.pk, connecting=True)  # already online: nothing new
    assert changes(cast.bob) == [(ONLINE, "connection")]


def test_a_ping_does_not_override_offline_chosen_with_the_tab_open(cast):
    admin_actions.set_presence(cast.bob, presence=ONLINE)
    admin_actions.set_presence(cast.bob, presence=OFFLINE)
    assert presence.heartbeat(cast.bob.pk) is False
    admin_actions.presence_from_inbox(cast.bob.pk, connecting=False)
    assert presence_of(cast.bob) == OFFLINE


def test_away_chosen_by_hand_stays_when_the_inbox_opens(cast):
    admin_actions.set_presence(cast.bob, presence=AWAY)
    admin_actions.presence_from_inbox(cast.bob.pk, connecting=True)
    assert presence_of(cast.bob) == AWAY
    assert changes(cast.bob) == [(AWAY, "manual")]


def test_no_heartbeat_for_the_timeout_makes_an_online_employee_away_automatically(cast):
    admin_actions.set_presence(cast.bob, presence=ONLINE)
    admin_actions.set_presence(cast.erin, presence=ONLINE)
    idle(cast.bob, settings.PRESENCE_TIMEOUT_SECONDS + 1)
    assert mark_idle_employees_away() == 1
    assert (presence_of(cast.bob), presence_of(cast.erin)) == (AWAY, ONLINE)
    assert changes(cast.bob) == [(ONLINE, "manual"), (AWAY, "automatic")]
    assert mark_idle_employees_away() == 0  # already away: nothing recorded twice


def test_a_heartbeat_that_came_in_meanwhile_keeps_them_online(cast):
    admin_actions.set_presence(cast.bob, presence=ONLINE)
    assert admin_actions.mark_away_if_idle(cast.bob.pk) is False  # the heartbeat is fresh
    assert presence_of(cast.bob) == ONLINE


def test_automatic_away_ends_when_the_inbox_is_back(cast):
    admin_actions.set_presence(cast.bob, presence=ONLINE)
    idle(cast.bob)
    mark_idle_employees_away()
    # The laptop wakes up: the tab's next ping brings them back.
    assert presence.heartbeat(cast.bob.pk) is False
    admin_actions.presence_from_inbox(cast.bob.pk, connecting=False)
    assert presence_of(cast.bob) == ONLINE
    assert changes(cast.bob)[-1] == (ONLINE, "connection")


def test_online_without_a_fresh_heartbeat_is_shown_as_away_and_assigned_nothing(cast):
    admin_actions.set_presence(cast.bob, presence=ONLINE)
    idle(cast.bob)
    bob = Employee.objects.get(pk=cast.bob.pk)
    assert presence.shown_presence(bob) == AWAY
    assert presence.online_agents(cast.acme.pk) == []
    assert presence.presence_map(cast.acme.pk)[cast.bob.pk] == AWAY


def test_a_heartbeat_of_an_online_employee_is_one_query(cast):
    admin_actions.set_presence(cast.bob, presence=ONLINE)
    assert count_queries(lambda: presence.heartbeat(cast.bob.pk)) == 1


def test_heartbeats_of_many_online_employees_are_one_query(cast):
    for employee in (cast.bob, cast.erin, cast.alice):
        admin_actions.set_presence(employee, presence=ONLINE)
    idle(cast.erin, 30)
    ids = {cast.bob.pk, cast.erin.pk, cast.alice.pk}
    assert count_queries(lambda: presence.heartbeats(ids)) == 1
    assert Employee.objects.get(pk=cast.erin.pk).last_seen_at > timezone.now() - timedelta(seconds=5)


def test_heartbeats_tell_who_was_not_online_and_refresh_everyone(cast):
    admin_actions.set_presence(cast.bob, presence=ONLINE)
    admin_actions.set_presence(cast.erin, presence=ONLINE)
    idle(cast.erin)
    mark_idle_employees_away()  # Erin's laptop slept: automatically away
    admin_actions.set_presence(cast.dave, presence=OFFLINE)
    idle(cast.dave)
    assert presence.heartbeats([cast.bob.pk, cast.erin.pk, cast.dave.pk]) == {cast.bob.pk}
    fresh = timezone.now() - timedelta(seconds=5)
    for employee in (cast.bob, cast.erin, cast.dave):
        assert Employee.objects.get(pk=employee.pk).last_seen_at > fresh
    assert (presence_of(cast.erin), presence_of(cast.dave)) == (AWAY, OFFLINE)  # the caller decides


async def test_pings_arriving_together_are_written_together_and_bring_the_away_back(
    tcast, layer, settings, monkeypatch
):
    settings.REALTIME_CATCHUP_ON_PING = False
    from helpdesk.realtime import consumers

    people = [tcast.alice, tcast.bob, tcast.erin, tcast.dave]
    sockets = [await connected_inbox(employee) for employee in people]
    await database_sync_to_async(admin_actions.set_presence)(tcast.erin, presence=ONLINE)
    await database_sync_to_async(idle)(tcast.erin)
    await database_sync_to_async(mark_idle_employees_away)()
    assert await database_sync_to_async(presence_of)(tcast.erin) == AWAY
    batches: list[list[int]] = []
    real = consumers._pinged_many

    def counted(employee_ids: list[int]) -> None:
        batches.append(list(employee_ids))
        real(employee_ids)

    monkeypatch.setattr(consumers, "_pinged_many", counted)
    for socket in sockets:
        await socket.send_json_to({"type": "ping", "after": 0})
    for socket in sockets:
        frame = await socket.receive_json_from(timeout=5)
        while frame["type"] != "pong":  # colleagues' presence may come first
            frame = await socket.receive_json_from(timeout=5)
    assert sorted(pk for batch in batches for pk in batch) == sorted(e.pk for e in people)
    assert len(batches) <= 2  # the first ping may go alone; the rest wait for it and go together
    assert await database_sync_to_async(presence_of)(tcast.erin) == ONLINE
    for socket in sockets:
        await socket.disconnect()


def test_a_deactivated_employee_cannot_set_presence(cast):
    admin_actions.deactivate_employee(cast.erin, by=cast.alice)
    with pytest.raises(ActionError):
        admin_actions.set_presence(Employee.objects.get(pk=cast.erin.pk), presence=ONLINE)
    assert changes(cast.erin) == []


def test_the_widget_counts_only_online_members_of_its_team(cast):
    assert presence.team_online(cast.acme.pk, cast.sales.pk) is False
    admin_actions.set_presence(cast.erin, presence=ONLINE)  # Support, not Sales
    assert presence.team_online(cast.acme.pk, cast.sales.pk) is False
    assert presence.team_online(cast.acme.pk) is True  # a channel without a team: anyone
    admin_actions.set_presence(cast.bob, presence=ONLINE)
    assert presence.team_online(cast.acme.pk, cast.sales.pk) is True
    admin_actions.set_presence(cast.bob, presence=AWAY)  # away is not online
    assert presence.team_online(cast.acme.pk, cast.sales.pk) is False


# --- The scheduler and a real worker ----------------------------------------------------------------------------


def test_the_scheduler_runs_the_presence_and_queue_tasks_within_a_minute():
    schedule = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule[mark_idle_employees_away.name] <= 30  # + PRESENCE_TIMEOUT_SECONDS: away within a minute of it
    assert schedule[hand_out_queued_conversations.name] <= 60


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_marks_an_idle_employee_away(tcast, settings):
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    admin_actions.set_presence(tcast.bob, presence=ONLINE)
    admin_actions.set_presence(tcast.erin, presence=ONLINE)
    idle(tcast.bob)
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    connection.close()
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=20):
        mark_idle_employees_away.apply_async(queue=queue)
        deadline = time.monotonic() + 30
        while presence_of(tcast.bob) != AWAY:
            assert time.monotonic() < deadline, "the worker did not mark Bob away"
            time.sleep(0.2)
    assert changes(tcast.bob)[-1] == (AWAY, "automatic")
    assert presence_of(tcast.erin) == ONLINE


def test_the_sweep_hands_out_what_a_trigger_missed(cast):
    # Bob is online (as if a hand-out had been skipped), the cast's chat waits.
    Employee.objects.filter(pk=cast.bob.pk).update(presence=ONLINE, last_seen_at=timezone.now())
    assert hand_out_queued_conversations() == 1
    cast.conversation.refresh_from_db()
    assert cast.conversation.assignee == cast.bob
    assert hand_out_queued_conversations() == 0


# --- Live: colleagues' inboxes hear of it ------------------------------------------------------------------------


async def presence_messages(communicator) -> list[dict]:
    out = []
    while not await communicator.receive_nothing(timeout=QUIET):
        message = await communicator.receive_json_from()
        if message["type"] == "presence":
            out.append({k: message[k] for k in ("employee_id", "presence")})
    return out


@pytest.mark.django_db(transaction=True)
async def test_presence_changes_reach_every_colleagues_inbox_live(tcast, layer):
    # Dave sees only chats assigned to him, and still hears who is online (to hand chats over).
    dave = await connected_inbox(tcast.dave)
    carol = await connected_inbox(tcast.carol)
    await presence_messages(dave)
    bob = await connected_inbox(tcast.bob)  # opening the inbox: Bob is online
    assert await presence_messages(dave) == [{"employee_id": tcast.bob.pk, "presence": "online"}]
    await database_sync_to_async(admin_actions.set_presence)(tcast.bob, presence=AWAY)
    assert await presence_messages(dave) == [{"employee_id": tcast.bob.pk, "presence": "away"}]
    # Not Bob's own socket (his page knows), and nothing crosses to another company.
    assert await presence_messages(bob) == []
    assert await presence_messages(carol) == []
    for socket in (dave, carol, bob):
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_hello_tells_a_new_inbox_who_is_online_itself_included(tcast, layer):
    await database_sync_to_async(admin_actions.set_presence)(tcast.erin, presence=AWAY)
    communicator = await connected_inbox_raw(tcast.bob)
    hello = await communicator.receive_json_from()
    assert hello["presence"][str(tcast.bob.pk)] == "online"
    assert hello["presence"][str(tcast.erin.pk)] == "away"
    assert hello["presence"][str(tcast.alice.pk)] == "offline"
    assert str(tcast.carol.pk) not in hello["presence"]
    await communicator.disconnect()


async def connected_inbox_raw(employee):
    communicator = await inbox_socket(employee)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


@pytest.mark.django_db(transaction=True)
async def test_without_a_shared_layer_the_pong_carries_colleagues_presence(tcast, layer, settings):
    settings.REALTIME_CATCHUP_ON_PING = True
    alice = await connected_inbox(tcast.alice)
    # Written by another process (the worker's automatic away): no socket message reaches us.
    await database_sync_to_async(Employee.objects.filter(pk=tcast.erin.pk).update)(presence=AWAY)
    await alice.send_json_to({"type": "ping", "after": 0})
    pong = await alice.receive_json_from()
    assert pong["type"] == "pong" and pong["presence"][str(tcast.erin.pk)] == "away"
    await alice.disconnect()
