from __future__ import annotations

from helpdesk.events.models import Event


def event_types(conversation=None, *, after: int = 0) -> list[str]:
    qs = Event.objects.filter(id__gt=after).order_by("id")
    if conversation is not None:
        qs = qs.filter(conversation=conversation)
    return list(qs.values_list("type", flat=True))


def last_event_id() -> int:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or 0


def count_queries(func) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        func()
    return len(ctx.captured_queries)
