"""Catch-up judged as the inbox judges now: every scope, the Trash, deleted messages, role changes.

In the spirit of test_url_matrix.py: three conversations of Acme, each holding a secret
text, are put through a situation (trashed, moved to another team, a role widened or
narrowed...), then every member of the cast resumes a real inbox socket from before the
secrets were written. What each reader gets must be what the inbox and the API would give
them *now*: the conversations they may see, with their text; of a conversation that left
their view at most a bare ``conversation.gone`` notice; nothing of anything else.

Cast (tests/conftest.py): alice admin (all), bob agent in Sales, erin agent in Support (team
scope), dave "Assigned only", carol admin of Globex.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts import services
from helpdesk.accounts.models import Employee, Role
from helpdesk.conversations import access, actions, queries
from helpdesk.conversations.access import Viewer
from helpdesk.conversations.models import Message
from helpdesk.conversations.snapshots import message_data
from helpdesk.events.models import Event
from helpdesk.realtime import catchup
from tests.helpers import count_queries, last_event_id
from tests.test_sockets import QUIET, connected_inbox

pytestmark = pytest.mark.django_db(transaction=True)

READERS = ("alice", "bob", "erin", "dave", "carol")
SECRETS = {"sales": "sales-secret", "support": "support-secret", "daves": "daves-secret"}


def world(cast: SimpleNamespace) -> SimpleNamespace:
    """Three assigned conversations (so opening an inbox hands nothing out), each with a secret.

    sales: team Sales, assigned to bob. support: team Support, assigned to erin. daves: team
    Support, assigned to dave. ``mark`` is the last event id before any secret was written.
    """
    support_widget = services.create_widget_channel(
        company=cast.acme, name="Support site", team=cast.support, allowed_origins=["*"]
    )
    actions.assign(cast.conversation, by=cast.alice, assignee=cast.bob)
    support = actions.receive_message(channel=support_widget, external_contact_id="v-2", body="hi").conversation
    daves = actions.receive_message(channel=support_widget, external_contact_id="v-3", body="hello").conversation
    actions.assign(support, by=cast.alice, assignee=cast.erin)
    actions.assign(daves, by=cast.alice, assignee=cast.dave)
    mark = last_event_id()
    chats = {"sales": cast.conversation, "support": support, "daves": daves}
    for key, conversation in chats.items():
        actions.post_reply(conversation, by=cast.alice, body=SECRETS[key])
    for conversation in chats.values():
        conversation.refresh_from_db()
    return SimpleNamespace(mark=mark, chats=chats, support_widget=support_widget)


async def resume(employee, after) -> dict:
    """Open the employee's inbox, resume after ``after``, return the catch-up answer."""
    socket = await connected_inbox(employee)
    await socket.send_json_to({"type": "resume", "after": after})
    while True:
        frame = await socket.receive_json_from()
        if frame["type"] in ("catchup", "error"):
            break
    await socket.disconnect()
    return frame


@dataclass
class Got:
    visible: set[str]  # conversations replayed as visible
    gone: set[str]  # conversations told to have left the reader's view
    secrets: set[str]  # secret texts found anywhere in the answer


def got(frame: dict, w: SimpleNamespace) -> Got:
    names = {conversation.pk: key for key, conversation in w.chats.items()}
    events = frame["events"]
    text = json.dumps(frame, ensure_ascii=False)
    for event in events:
        if event["type"] == catchup.GONE:  # a bare notice: the id, nothing else
            assert event["payload"] == {"conversation": {"id": event["conversation_id"]}}
            assert event["visible"] is False
    return Got(
        visible={names[e["conversation_id"]] for e in events if e["visible"] and e["conversation_id"] in names},
        gone={names[e["conversation_id"]] for e in events if e["type"] == catchup.GONE},
        secrets={key for key, secret in SECRETS.items() if secret in text},
    )


def expect(visible: str = "", gone: str = "") -> Got:
    """Visible conversations carry their secret; gone ones carry none."""
    shown = set(visible.split())
    return Got(visible=shown, gone=set(gone.split()), secrets=shown)


ALL = "sales support daves"
BASELINE = {
    "alice": expect(ALL),
    "bob": expect("sales"),
    "erin": expect("support daves"),
    "dave": expect("daves"),
    "carol": expect(),
}


def as_is(cast, w) -> None:
    pass


def trash_sales(cast, w) -> None:
    actions.delete_conversation(w.chats["sales"], by=cast.alice)


def trash_and_restore_sales(cast, w) -> None:
    actions.delete_conversation(w.chats["sales"], by=cast.alice)
    actions.restore_conversation(w.chats["sales"], by=cast.alice)


def move_sales_to_support(cast, w) -> None:
    actions.assign(w.chats["sales"], by=cast.alice, team=cast.support, assignee=cast.erin)


def widen_dave_to_sales_after_sales_moved(cast, w) -> None:
    # The chat was in Sales when its secret was written; by the time Dave may see Sales it is not.
    move_sales_to_support(cast, w)
    agent = Role.objects.get(company=cast.acme, name="Agent")
    admin_actions.update_employee(cast.dave, by=cast.sam, role=agent, teams=[cast.sales])


def widen_dave_to_support(cast, w) -> None:
    agent = Role.objects.get(company=cast.acme, name="Agent")
    admin_actions.update_employee(cast.dave, by=cast.sam, role=agent, teams=[cast.support])


def narrow_bob_after_reassignment(cast, w) -> None:
    # Bob was the assignee when the secret was written; the chat stays in his team, but his
    # role now sees only what is assigned to him.
    actions.assign(w.chats["sales"], by=cast.alice, assignee=cast.alice)
    admin_actions.update_employee(cast.bob, by=cast.sam, role=Role.objects.get(name="Assigned only"))


def narrow_erin_by_team(cast, w) -> None:
    admin_actions.update_employee(cast.erin, by=cast.sam, teams=[cast.sales])


MATRIX: dict[Callable, dict[str, Got]] = {
    as_is: BASELINE,
    trash_sales: {
        **BASELINE,
        "alice": expect("support daves", gone="sales"),
        "bob": expect(gone="sales"),
    },
    trash_and_restore_sales: BASELINE,
    move_sales_to_support: {
        **BASELINE,
        "bob": expect(gone="sales"),
        "erin": expect(ALL),
    },
    widen_dave_to_sales_after_sales_moved: {
        **BASELINE,
        "bob": expect(gone="sales"),
        "erin": expect(ALL),
        # As written, the move was an event for Sales: Dave, now in Sales, hears only that it left.
        "dave": expect("daves", gone="sales"),
    },
    widen_dave_to_support: {**BASELINE, "dave": expect("support daves")},
    narrow_bob_after_reassignment: {**BASELINE, "bob": expect(gone="sales")},
    # Erin keeps the chat assigned to her, whatever its team.
    narrow_erin_by_team: {**BASELINE, "erin": expect("sales support")},
}


@pytest.mark.parametrize("situation", MATRIX, ids=lambda f: f.__name__)
async def test_catch_up_gives_each_reader_what_the_inbox_shows_now(tcast, situation):
    w = await database_sync_to_async(world)(tcast)
    await database_sync_to_async(situation)(tcast, w)
    for name in READERS:
        # Carol resumes from the start: Acme's ids are past anything Globex's inbox has seen.
        frame = await resume(getattr(tcast, name), 0 if name == "carol" else w.mark)
        assert frame["type"] == "catchup" and frame["reset"] is False, name
        assert got(frame, w) == MATRIX[situation][name], name
        # The oracle: what they get visibly is exactly what the gate lets them open now.
        assert got(frame, w).visible == await database_sync_to_async(visible_now)(getattr(tcast, name), w), name


def visible_now(employee, w: SimpleNamespace) -> set[str]:
    employee = Employee.objects.select_related("role").get(pk=employee.pk)
    ids = set(access.visible_conversations(employee).values_list("pk", flat=True))
    return {key for key, conversation in w.chats.items() if conversation.pk in ids}


async def test_a_trashed_conversation_answers_404_and_replays_nothing(tcast):
    """The issue's repro: resume from 0 while the conversation is in the Trash."""
    w = await database_sync_to_async(world)(tcast)
    await database_sync_to_async(trash_sales)(tcast, w)
    sales = w.chats["sales"]

    def api_status() -> int:
        client = Client()
        client.force_login(tcast.bob.user)
        return client.get(f"/api/v1/conversations/{sales.pk}/").status_code

    assert await database_sync_to_async(api_status)() == 404
    frame = await resume(tcast.bob, 0)
    about_it = [e for e in frame["events"] if e["conversation_id"] == sales.pk]
    assert [e["type"] for e in about_it] == [catchup.GONE]
    assert "sales-secret" not in json.dumps(frame)
    assert "Hello, is my order shipped?" not in json.dumps(frame)


# --- Deleted messages -------------------------------------------------------------------------------------


def delete_a_reply(cast) -> tuple[int, Message]:
    mark = last_event_id()
    reply = actions.post_reply(cast.conversation, by=cast.bob, body="oops-wrong-card-number")
    actions.assign(cast.conversation, by=cast.alice, assignee=cast.bob)  # a snapshot previewing the reply
    actions.delete_message(reply, by=cast.alice)
    return mark, reply


def as_the_thread_shows(employee, message_id: int) -> dict:
    employee = Employee.objects.select_related("role").get(pk=employee.pk)
    conversation = access.get_conversation(employee, Message.objects.get(pk=message_id).conversation_id)
    reveal = access.sees_deleted(employee)
    [shown] = [message_data(m, reveal_deleted=reveal) for m in queries.thread(conversation) if m.pk == message_id]
    return shown


@pytest.mark.parametrize("reader, text", [("alice", True), ("bob", False), ("bob_seeing_deleted", True)])
async def test_a_deleted_message_is_replayed_as_the_thread_shows_it(tcast, reader, text):
    mark, reply = await database_sync_to_async(delete_a_reply)(tcast)
    if reader == "bob_seeing_deleted":  # a team-scope role that may see deleted messages

        def grant() -> None:
            role = tcast.bob.role
            admin_actions.update_role(role, by=tcast.sam, permissions=[*role.permissions, "see_deleted"])

        await database_sync_to_async(grant)()
    employee = tcast.alice if reader == "alice" else tcast.bob
    frame = await resume(employee, mark)
    shown = await database_sync_to_async(as_the_thread_shows)(employee, reply.pk)
    assert shown["deleted"] is True and (shown["body"] == "oops-wrong-card-number") is text
    carrying = [e for e in frame["events"] if (e["payload"].get("message") or {}).get("id") == reply.pk]
    assert [e["type"] for e in carrying] == ["message.created", "message.deleted"]
    for event in carrying:
        assert event["payload"]["message"] == shown
    # The list never previews a deleted message, whoever reads it.
    assert all(e["payload"]["conversation"].get("preview") != "oops-wrong-card-number" for e in frame["events"])
    if not text:
        assert "oops-wrong-card-number" not in json.dumps(frame)


@pytest.mark.parametrize("reader", ["erin", "dave", "carol"])
async def test_readers_outside_the_scope_get_nothing_of_a_deleted_message(tcast, reader):
    mark, _ = await database_sync_to_async(delete_a_reply)(tcast)
    frame = await resume(getattr(tcast, reader), 0 if reader == "carol" else mark)
    assert frame["events"] == [] and frame["reset"] is False


# --- The retained window and bad resume points ---------------------------------------------------------------


async def test_a_resume_point_older_than_the_window_is_told_to_reload(tcast, settings):
    w = await database_sync_to_async(world)(tcast)

    def age_everything() -> None:
        Event.objects.update(created_at=timezone.now() - timedelta(seconds=settings.EVENT_CATCHUP_MAX_AGE + 60))

    await database_sync_to_async(age_everything)()
    for after in (0, w.mark):  # from the start of history, or from a point the window has left
        assert await resume(tcast.alice, after) == {"type": "catchup", "events": [], "reset": True}
    # Up to date: nothing was missed, so nothing to reload (and old overlap rows are not re-sent).
    newest = await database_sync_to_async(last_event_id)()
    assert await resume(tcast.alice, newest) == {"type": "catchup", "events": [], "reset": False}


async def test_more_missed_events_than_the_window_holds_is_told_to_reload(tcast, settings):
    settings.EVENT_CATCHUP_LIMIT = 10
    mark = await database_sync_to_async(last_event_id)()
    for n in range(11):
        await database_sync_to_async(actions.post_reply)(tcast.conversation, by=tcast.alice, body=f"r{n}")
    assert (await resume(tcast.alice, mark))["reset"] is True


@pytest.mark.parametrize("after", ["12", -1, True, 1.5, None, [1], "future"])
async def test_a_bad_resume_point_gets_an_error_and_the_socket_stays_open(tcast, after):
    newest = await database_sync_to_async(last_event_id)()
    if after == "future":
        after = newest + 1
    socket = await connected_inbox(tcast.alice)
    await socket.send_json_to({"type": "resume", "after": after})
    frame = await socket.receive_json_from()
    assert (frame["type"], frame["code"]) == ("error", "bad_resume")
    await socket.send_json_to({"type": "resume", "after": newest})
    assert (await socket.receive_json_from())["type"] == "catchup"
    await socket.disconnect()


async def test_another_companys_newer_event_id_is_a_resume_point_in_the_future(tcast):
    # Ids are shared by all companies: Globex's newest is past Acme's, so no Acme inbox had it.
    await database_sync_to_async(actions.receive_message)(
        channel=tcast.globex_widget, external_contact_id="g", body="globex"
    )
    globex_newest = await database_sync_to_async(last_event_id)()
    frame = await resume(tcast.alice, globex_newest)
    assert (frame["type"], frame["code"]) == ("error", "bad_resume")


def test_a_resume_costs_the_same_few_queries_however_many_events_it_replays(tcast):
    w = world(tcast)
    trash_sales(tcast, w)
    actions.delete_message(Message.objects.filter(body="support-secret").get(), by=tcast.alice)
    viewer = Viewer.of(tcast.erin)
    # employee + role; teams; events; visible conversations among them; their deleted messages
    assert count_queries(lambda: catchup.catch_up(viewer, w.mark)) == 5
    for n in range(30):
        actions.post_reply(w.chats["support" if n % 2 else "daves"], by=tcast.alice, body=f"more {n}")
    events, _ = catchup.catch_up(viewer, w.mark)
    assert len(events) > 30
    assert count_queries(lambda: catchup.catch_up(viewer, w.mark)) == 5


# --- The live path: a changed access closes the socket -------------------------------------------------------


def change_role(cast) -> None:
    admin_actions.update_employee(cast.bob, by=cast.sam, role=Role.objects.get(name="Assigned only"))


def change_teams(cast) -> None:
    admin_actions.update_employee(cast.bob, by=cast.sam, teams=[cast.support])


def change_team_members(cast) -> None:
    admin_actions.update_team(cast.sales, by=cast.sam, members=[])


def narrow_the_role_itself(cast) -> None:
    admin_actions.update_role(cast.bob.role, by=cast.sam, scope="assigned")


def deactivate(cast) -> None:
    admin_actions.deactivate_employee(cast.bob, by=cast.sam)


@pytest.mark.parametrize(
    "change",
    [change_role, change_teams, change_team_members, narrow_the_role_itself, deactivate],
    ids=lambda f: f.__name__,
)
async def test_an_open_inbox_stops_when_its_employees_access_changes(tcast, change):
    bob = await connected_inbox(tcast.bob)
    while not await bob.receive_nothing(timeout=QUIET):
        await bob.receive_json_from()
    await database_sync_to_async(change)(tcast)
    # The page reloads with its new access, and this socket closes.
    frame = await bob.receive_json_from()
    assert frame == {"type": "catchup", "events": [], "reset": True}
    assert await bob.receive_output() == {"type": "websocket.close", "code": 4409}
    await bob.disconnect()


async def test_a_resume_after_a_lost_access_notice_stops_the_socket(tcast, monkeypatch):
    """Even when the notice is lost (Redis away), the next resume finds the access changed."""
    from helpdesk.realtime import notices

    bob = await connected_inbox(tcast.bob)
    while not await bob.receive_nothing(timeout=QUIET):
        await bob.receive_json_from()
    monkeypatch.setattr(notices, "access_changed", lambda ids: None)
    await database_sync_to_async(change_role)(tcast)
    await bob.send_json_to({"type": "resume", "after": await database_sync_to_async(last_event_id)()})
    assert await bob.receive_json_from() == {"type": "catchup", "events": [], "reset": True}
    assert await bob.receive_output() == {"type": "websocket.close", "code": 4409}
    await bob.disconnect()
