"""Events a reconnecting inbox socket missed."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from helpdesk.conversations.access import Viewer
from helpdesk.events.log import serialise
from helpdesk.events.models import Event


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
    out = []
    for event in rows:
        data = serialise(event)
        if audience_sees(viewer, data):
            out.append({**data, "visible": viewer.sees(data["payload"]["conversation"])})
    return out, False


def audience_sees(viewer: Viewer, event: dict[str, Any]) -> bool:
    """May the viewer receive this event: they see the conversation now, or saw it before."""
    snapshot = event["payload"]["conversation"]
    if viewer.sees(snapshot):
        return True
    previous = event["payload"].get("previous")
    return bool(previous) and viewer.sees({**snapshot, **previous, "deleted": False})
