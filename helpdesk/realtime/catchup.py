"""Events a reconnecting inbox socket missed."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from helpdesk.conversations.access import Viewer
from helpdesk.conversations.models import Message, MessageKind
from helpdesk.conversations.snapshots import preview_of
from helpdesk.events.log import serialise
from helpdesk.events.models import Event

# Events whose payload carries a message's text.
MESSAGE_EVENTS = ("message.created", "message.restored")


def events_after(viewer: Viewer, after: int) -> tuple[list[dict[str, Any]], bool]:
    """Events after ``after`` that the viewer may see, and whether the client must reload.

    Ids are handed out at insert but transactions commit out of order, so an event with a
    lower id can become visible after a higher one was delivered. We re-read a window of
    ``EVENT_CATCHUP_OVERLAP`` ids before ``after``; the client drops ids it already has.
    """
    start = max(after - settings.EVENT_CATCHUP_OVERLAP, 0)
    limit = settings.EVENT_CATCHUP_LIMIT
    rows = list(Event.objects.filter(company_id=viewer.company_id, id__gt=start).order_by("id")[: limit + 1])
    if len(rows) > limit:
        return [], True
    out = [serialise(event) for event in rows]
    out = [
        {**data, "visible": viewer.sees(data["payload"]["conversation"])} for data in out if audience_sees(viewer, data)
    ]
    if not viewer.sees_deleted:
        _redact_deleted(out)
    return out, False


def _redact_deleted(events: list[dict[str, Any]]) -> None:
    """Old events still carry the text of messages deleted since: drop it for this viewer.

    Both places the text can be: the message itself (``message.created`` / ``.restored``)
    and the list preview in the conversation snapshot of any event written while that
    message was the newest one. A stale preview is replaced by the current one.
    """
    conversation_ids = {e["payload"]["conversation"]["id"] for e in events}
    if not conversation_ids:
        return
    rows = Message.objects.filter(conversation_id__in=conversation_ids, deleted_at__isnull=False).values_list(
        "pk", "conversation_id", "kind", "body", "conversation__last_message_preview"
    )
    deleted: set[int] = set()
    stale: dict[tuple[int, str], str] = {}
    for pk, conversation_id, kind, body, current in rows:
        deleted.add(pk)
        preview = preview_of(body)
        if kind == MessageKind.MESSAGE and preview != current:
            stale[conversation_id, preview] = current
    if not deleted:
        return
    for event in events:
        payload, changes = event["payload"], {}
        message = payload.get("message")
        if event["type"] in MESSAGE_EVENTS and message["id"] in deleted:
            changes["message"] = {**message, "body": "", "deleted": True}
        snapshot = payload["conversation"]
        key = (snapshot["id"], snapshot.get("preview") or "")
        if key in stale:
            changes["conversation"] = {**snapshot, "preview": stale[key]}
        if changes:
            event["payload"] = {**payload, **changes}


def audience_sees(viewer: Viewer, event: dict[str, Any]) -> bool:
    """May the viewer receive this event: they see the conversation now, or saw it before."""
    snapshot = event["payload"]["conversation"]
    if viewer.sees(snapshot):
        return True
    previous = event["payload"].get("previous")
    return bool(previous) and viewer.sees({**snapshot, **previous, "deleted": False})
