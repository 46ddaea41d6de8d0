"""The relay: each web process tails the event log and hands new events to its own sockets.

Sockets no longer hear of events through the channel layer. Every event loop that has
sockets (one per uvicorn worker process; a test may run several) has one :class:`Relay`: a
registry of its local sockets by group, and a task that reads what committed since its last
read (:class:`helpdesk.events.tail.Tail`, safe against ids committing out of order) and puts
each event in the queue of every local socket of the groups it concerns, in id order, at
most once per socket. Nothing on that path touches Redis: an outage of Redis delays only
what still rides the channel layer (typing, presence, notices).

The relay wakes
- at once when this process commits an event (:func:`nudge`, from the writer's on-commit),
- on PostgreSQL's ``NOTIFY smartchat_events`` (sent by a trigger in the writing transaction
  of any process: other web workers, the Celery worker), on a connection of its own,
- and every ``REALTIME_RELAY_POLL_SECONDS`` whatever happens: the backstop while the
  listening connection is down, and the only way on SQLite (the embedded default, where the
  worker is another process with no shared layer).

It starts with the first socket of its loop (:func:`join`; that socket waits for the first
read position, so nothing committed after its ``hello`` is missed) and stops, closing its
connections, when the last one leaves. Uvicorn runs with ``--lifespan off``: no process-wide
start or stop hook is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from django.conf import settings

from helpdesk.events.tail import CHANNEL, Tail, listen_params

log = logging.getLogger(__name__)

Send = tuple[str, dict[str, Any]]


class Receiver(Protocol):
    """A local socket: takes a channel-layer-shaped message without blocking."""

    def relay_message(self, message: dict[str, Any]) -> None: ...


# A socket that resumes by event id (the inbox) is told the log's position every so many
# events, in order after the events it was sent: a socket that sees little (an agent of a
# quiet team) then resumes from near the head, not from its last event of long ago, which a
# busy company's log has pushed out of the catch-up window (a needless reload).
POSITION_EVERY_FRACTION = 4


class Relay:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.groups: dict[str, set[Receiver]] = {}
        self.members: dict[Receiver, tuple[str, ...]] = {}
        self.wake = asyncio.Event()
        self.tail = Tail()
        # Reads run on a thread of their own (its own database connection): never queued
        # behind the sockets' ORM work on the process's database thread.
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay")
        self.starting: asyncio.Task | None = None
        self.tasks: list[asyncio.Task] = []
        self.stopped = False
        # Figures for tests, the bench and metrics: events delivered, reads, last read's lag.
        self.delivered = 0
        self.reads = 0
        self.last_read_at = 0.0
        # Per socket that wants it (``wants_position``): the last position it was told.
        self.positions: dict[Receiver, int] = {}

    # --- Sockets ---------------------------------------------------------------------------

    def add(self, receiver: Receiver, groups: Iterable[str]) -> None:
        groups = tuple(dict.fromkeys(groups))
        self.members[receiver] = groups
        for group in groups:
            self.groups.setdefault(group, set()).add(receiver)

    def remove(self, receiver: Receiver) -> None:
        self.positions.pop(receiver, None)
        for group in self.members.pop(receiver, ()):
            receivers = self.groups.get(group)
            if receivers is not None:
                receivers.discard(receiver)
                if not receivers:
                    del self.groups[group]

    def route(self) -> list[tuple[int, list[Send]]]:
        """On the relay's thread: read what committed, and what each event means for sockets.

        Each event's sends are worked out here (a customer's socket group takes a query),
        never on the event loop. An event that cannot be worked out is logged and skipped.
        """
        from helpdesk.observability import metrics

        from . import fanout

        routed = []
        for event in self.tail.read():
            try:
                routed.append((event["id"], fanout.local_sends(event)))
                metrics.event_published(event)  # read and fanned out here: the count, the lag from its write
            except Exception:
                log.exception("could not fan out event %s", event.get("id"))
        return routed

    def deliver(self, routed: list[tuple[int, list[Send]]]) -> None:
        """Each event's messages to the local sockets of their groups, once per socket, in order."""
        for event_id, sends in routed:
            targets: dict[int, tuple[dict[str, Any], set[Receiver]]] = {}
            for group, message in sends:
                receivers = self.groups.get(group)
                if receivers:
                    targets.setdefault(id(message), (message, set()))[1].update(receivers)
            for message, receivers in targets.values():
                for receiver in receivers:
                    receiver.relay_message(message)
            if event_id:
                self.delivered += 1
        self._tell_positions(max((event_id for event_id, _ in routed), default=0))

    def _tell_positions(self, newest: int) -> None:
        """Every ``EVENT_CATCHUP_LIMIT / POSITION_EVERY_FRACTION`` events, each socket hears how far the log is."""
        if not newest:
            return
        every = max(1, settings.EVENT_CATCHUP_LIMIT // POSITION_EVERY_FRACTION)
        for receiver in self.members:
            if not getattr(receiver, "wants_position", False):
                continue
            told = self.positions.setdefault(receiver, newest)
            if newest - told >= every:
                self.positions[receiver] = newest
                receiver.relay_message({"type": "inbox.position", "event_id": newest})

    # --- Running -------------------------------------------------------------------------

    async def ready(self) -> None:
        if self.starting is None:
            self.starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self.starting)

    async def _start(self) -> None:
        await self.loop.run_in_executor(self.executor, self.tail.start)
        params = await self.loop.run_in_executor(self.executor, listen_params)
        self.tasks.append(asyncio.ensure_future(self._run()))
        if params is not None:
            self.tasks.append(asyncio.ensure_future(self._listen(params)))

    async def _run(self) -> None:
        poll = settings.REALTIME_RELAY_POLL_SECONDS
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), poll)
            self.wake.clear()
            try:
                routed = await self.loop.run_in_executor(self.executor, self.route)
            except Exception:
                # The database away: the position is kept, the next read gets all of it.
                log.warning("the relay could not read the event log; retrying", exc_info=True)
                await asyncio.sleep(min(poll, 1.0))
                continue
            self.reads += 1
            self.last_read_at = time.monotonic()
            if routed:
                self.deliver(routed)

    async def _listen(self, params: dict[str, Any]) -> None:
        import psycopg

        while True:
            try:
                connection = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                async with connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    self.wake.set()  # whatever committed while nobody listened
                    async for _notice in connection.notifies():
                        self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("the relay lost its LISTEN connection; polling until it is back", exc_info=True)
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        self.stopped = True
        if _relays.get(self.loop) is self:
            del _relays[self.loop]
        # Every wait here is bounded: a read stuck on the database (its thread can't be
        # interrupted) must not keep the last socket's close, or the loop's end, waiting.
        if self.starting is not None:
            await asyncio.wait([self.starting], timeout=STOP_WAIT_SECONDS)
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=STOP_WAIT_SECONDS)
        closing = self.loop.run_in_executor(self.executor, self.tail.close)
        done, _ = await asyncio.wait([closing], timeout=STOP_WAIT_SECONDS)
        if not done:
            log.warning("the relay's reader did not close within %s s; left to its thread", STOP_WAIT_SECONDS)
        elif closing.exception() is not None:
            log.warning("the relay's reader closed with an error: %r", closing.exception())
        self.executor.shutdown(wait=False)


# How long stopping waits for the first read, the listener and the reader to close.
STOP_WAIT_SECONDS = 5.0

# One relay per event loop that has sockets.
_relays: dict[asyncio.AbstractEventLoop, Relay] = {}


def current() -> Relay | None:
    """The relay of the running loop, if it has sockets."""
    return _relays.get(asyncio.get_running_loop())


async def join(receiver: Receiver, groups: Iterable[str]) -> Relay:
    """Register a local socket for its groups; the first one starts the loop's relay."""
    loop = asyncio.get_running_loop()
    relay = _relays.get(loop)
    if relay is None:
        relay = _relays[loop] = Relay(loop)
    relay.add(receiver, groups)
    try:
        await relay.ready()
    except BaseException:
        await leave(receiver, relay)
        raise
    return relay


async def leave(receiver: Receiver, relay: Relay | None) -> None:
    """The socket is gone; the last one of its relay stops it."""
    if relay is None:
        return
    relay.remove(receiver)
    if not relay.members and not relay.stopped:
        await relay.stop()


def deliver_here(sends: list[Send]) -> None:
    """Messages for local sockets of these groups, queued in order with the events (any thread)."""
    for relay in list(_relays.values()):
        with contextlib.suppress(RuntimeError):  # its loop just closed
            relay.loop.call_soon_threadsafe(relay.deliver, [(0, sends)])


def nudge() -> None:
    """An event committed in this process: every relay of the process reads now (any thread)."""
    for relay in list(_relays.values()):
        with contextlib.suppress(RuntimeError):  # its loop just closed
            relay.loop.call_soon_threadsafe(relay.wake.set)
