from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

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


class HeldTransaction(threading.Thread):
    """``write()`` in a transaction of the thread's own connection, committed only when told:
    writers that commit in another order than they took their ids (``hold``, then ``finish``)."""

    def __init__(self, write: Callable[[], Any], label: str) -> None:
        super().__init__(name=f"writer-{label}", daemon=True)
        self.write = write
        self.written, self.commit, self.done = threading.Event(), threading.Event(), threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        from django.db import connection, transaction

        try:
            with transaction.atomic():
                self.result = self.write()
                self.written.set()
                assert self.commit.wait(20), "never told to commit"
        except BaseException as exc:
            self.error = exc
            self.written.set()
        finally:
            connection.close()
            self.done.set()

    def hold(self) -> HeldTransaction:
        """Start, and return once the write is done and its transaction still open."""
        self.start()
        assert self.written.wait(20) and self.error is None, self.error
        return self

    def finish(self) -> None:
        self.commit.set()
        assert self.done.wait(20)
        assert self.error is None, self.error
