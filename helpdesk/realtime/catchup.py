"""Events a reconnecting inbox socket missed, judged as the inbox would judge them now.

An event row keeps the conversation as it was when the event was written: its team, its
assignee, its preview, the text of a message deleted since. Replaying rows as written
would show a trashed conversation, text deleted since, or a conversation that left the
reader's scope (or whose reader's role narrowed). So each replayed event is judged by the
conversation's *current* visibility to the reader, through the one gate
(``access.visible_conversations``), and deleted messages are shown as the thread shows
them now. An event about a conversation the reader can no longer see becomes at most one
bare ``conversation.gone`` notice (no text, no snapshot), so the page drops the row.

The retained window is the company's last ``EVENT_CATCHUP_LIMIT`` events written in the
last ``EVENT_CATCHUP_MAX_AGE`` seconds. A resume point that missed anything older (or
more) is answered ``reset``: the page reloads instead of paging through the history.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from helpdesk.accounts.models import Employee
from helpdesk.conversations import access
from helpdesk.conversations.access import Viewer
from helpdesk.conversations.models import Message, MessageKind
from helpdesk.conversations.snapshots import message_data, preview_of
from helpdesk.events.log import serialise
from helpdesk.events.models import Event

# The notice an event about a conversation that left the reader's view becomes.
GONE = "conversation.gone"


class FutureResume(ValueError):
    """``after`` is past the company's newest event: no client could have seen it."""


def catch_up(viewer: Viewer, after: int) -> tuple[list[dict[str, Any]], bool] | None:
    """What a socket opened with ``viewer`` missed after ``after``; None if its access changed since.

    A socket joins its channel-layer groups by the access its employee had when it opened.
    If their role, teams or active state changed since (and the notice that closes such
    sockets was lost), the socket must not go on: the caller closes it and the page reloads.

    Queries, whatever the number of events: the employee with their role (1) and teams (1),
    then those of :func:`events_after` (at most 3).
    """
    employee = Employee.objects.select_related("role").filter(pk=viewer.employee_id, is_active=True).first()
    if employee is None or Viewer.of(employee) != viewer:
        return None
    return events_after(employee, after, viewer=viewer)


def events_after(employee: Employee, after: int, *, viewer: Viewer | None = None) -> tuple[list[dict[str, Any]], bool]:
    """Events after ``after`` as this employee may see them now, and whether the client must reload.

    Ids are handed out at insert but transactions commit out of order, so an event with a
    lower id can become visible after a higher one was delivered. We re-read a window of
    ``EVENT_CATCHUP_OVERLAP`` ids before ``after``; the client drops ids it already has.

    ``viewer``, if given, must be the employee's as read just now (its teams decide the scope).
    Raises :class:`FutureResume` for an ``after`` past the company's newest event.
    Queries: the events (1); if any, the visible conversations among them (1); if any of
    those, their deleted messages (1). Never one per event.
    """
    # Reading back at least one id means the event ``after`` itself is read if it exists.
    start = max(after - max(settings.EVENT_CATCHUP_OVERLAP, 1), 0)
    limit = settings.EVENT_CATCHUP_LIMIT
    rows = list(Event.objects.filter(company_id=employee.company_id, id__gt=start).order_by("id")[: limit + 1])
    if len(rows) > limit:
        return [], True
    newest = rows[-1].id if rows else start
    if after > newest:
        raise FutureResume(after)
    oldest_kept = timezone.now() - timedelta(seconds=settings.EVENT_CATCHUP_MAX_AGE)
    if any(row.id > after and row.created_at < oldest_kept for row in rows):
        return [], True  # missed something older than the window: reload, don't replay history
    rows = [row for row in rows if row.created_at >= oldest_kept]
    if not rows:
        return [], False

    # The one gate, asked once for every conversation in the window (with the teams the
    # viewer was just built from, when there is one: not read twice).
    previews = dict(
        access.visible_conversations(employee, teams=viewer.team_ids if viewer else None)
        .filter(pk__in={row.conversation_id for row in rows})
        .values_list("pk", "last_message_preview")
    )
    out: list[dict[str, Any]] = []
    gone: dict[int, dict[str, Any]] = {}
    for row in rows:
        data = serialise(row)
        if row.conversation_id in previews:
            out.append({**data, "visible": True})
            continue
        # Tell of it only a reader it was written for (who may have it in their list);
        # anyone else learns nothing, not even that it exists.
        viewer = viewer or Viewer.of(employee)
        if row.conversation_id is not None and audience_sees(viewer, data):
            gone[row.conversation_id] = data
    out += [_gone_notice(data) for data in gone.values()]
    out.sort(key=lambda event: event["id"])
    _show_deletions_as_now(out, previews, reveal=access.sees_deleted(employee))
    return out, False


def _gone_notice(event: dict[str, Any]) -> dict[str, Any]:
    """The conversation left the reader's view: its id, and nothing of what it holds."""
    conversation_id = event["conversation_id"]
    return {
        "id": event["id"],
        "type": GONE,
        "conversation_id": conversation_id,
        "actor_id": None,
        "payload": {"conversation": {"id": conversation_id}},
        "created_at": event["created_at"],
        "visible": False,
    }


def _show_deletions_as_now(events: list[dict[str, Any]], previews: dict[int, str], *, reveal: bool) -> None:
    """Old events still show messages deleted since as they were: show them as the thread does now.

    A deleted message keeps its text only for readers who may see deleted messages
    (``reveal``), marked deleted, exactly as ``message_data`` gives it to the thread. The
    list preview never shows a deleted message, for anyone: a preview written while a
    message now deleted was the newest one is replaced by the current preview.
    """
    if not previews:
        return
    deleted_rows = Message.objects.filter(conversation_id__in=previews, deleted_at__isnull=False).select_related(
        "deleted_by", "author_employee", "author_contact"
    )
    if reveal:  # their files are shown only to those who may see deleted messages: one query
        deleted_rows = deleted_rows.prefetch_related("attachments")
    deleted: dict[int, dict[str, Any]] = {}
    stale: dict[tuple[int, str], str] = {}
    for message in deleted_rows:
        deleted[message.pk] = message_data(message, reveal_deleted=reveal)
        preview, current = preview_of(message.body), previews[message.conversation_id]
        if message.kind == MessageKind.MESSAGE and preview != current:
            stale[message.conversation_id, preview] = current
    if not deleted:
        return
    for event in events:
        if event["type"] == GONE:
            continue
        payload, changes = event["payload"], {}
        message = payload.get("message")
        if isinstance(message, dict) and message.get("id") in deleted:
            changes["message"] = deleted[message["id"]]
        snapshot = payload["conversation"]
        key = (snapshot["id"], snapshot.get("preview") or "")
        if key in stale:
            changes["conversation"] = {**snapshot, "preview": stale[key]}
        if changes:
            event["payload"] = {**payload, **changes}


def audience_sees(viewer: Viewer, event: dict[str, Any]) -> bool:
    """Was the event written for this viewer: they see the conversation as written, or saw it before.

    Live fan-out uses it for events as they happen (the snapshot is then the current state);
    catch-up only to decide who is told that a conversation left their view.
    """
    snapshot = event["payload"]["conversation"]
    if viewer.sees(snapshot):
        return True
    previous = event["payload"].get("previous")
    return bool(previous) and viewer.sees({**snapshot, **previous, "deleted": False})
