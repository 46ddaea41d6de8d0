"""What every JSON socket shares, the inbox's and the channels' (the widget's visitor socket).

Channel integrations build their sockets from these and never import the inbox consumer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from channels.consumer import get_handler_name
from channels.db import DatabaseSyncToAsync
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from django.utils.translation import gettext as _

from helpdesk import safejson
from helpdesk.observability import metrics

from . import relay

log = logging.getLogger(__name__)

# Clients send a typing notice every few seconds while typing; faster ones are dropped.
TYPING_MIN_SECONDS = 1.0
# Ids in frames are database ids: bigint at most (a larger one can only be a probe).
MAX_ID = 2**63 - 1


P = ParamSpec("P")
R = TypeVar("R")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=settings.SOCKET_DB_THREADS, thread_name_prefix="socket-db")
    return _pool


def socket_db(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Channels' ``database_sync_to_async`` on a bounded pool of SOCKET_DB_THREADS threads.

    Channels runs every socket's database work of a process on one thread (thread-sensitive),
    so one process could never do two at once. Here each call runs wholly on one of the pool's
    threads (a transaction never spans two), with the connection closed, i.e. given back to
    the PostgreSQL pool (``DB_POOL_MAX_SIZE``), before and after. SOCKET_DB_THREADS=0: the one
    thread, as Channels does it.
    """

    @functools.wraps(func)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if settings.SOCKET_DB_THREADS <= 0:
            return await DatabaseSyncToAsync(func)(*args, **kwargs)
        return await DatabaseSyncToAsync(func, thread_sensitive=False, executor=_executor())(*args, **kwargs)

    return run


# A socket joins its channel-layer groups when it opens, and again at a ping only when the layer
# may have lost them: Redis lost its data (restarted with nothing kept, flushed), or the last
# join is LAYER_REJOIN_SECONDS old (channels_redis forgets a membership after its group_expiry,
# a day; an inbox tab stays open for days). Joining again at every ping cost each socket six
# Redis round trips per ping: 1,800 at once when the 300 tabs of a company, reconnected together
# after a restart, ping together (bench/README.md, "One event to 300 sockets: the tail").
LAYER_REJOIN_SECONDS = 3600.0
# How often a process asks Redis whether it still holds what its sockets joined (at most; only
# when a socket pings), unless the loop's layer reader has just met an error.
LAYER_CHECK_SECONDS = 10.0


class LayerMemory:
    """Per event loop and channel layer: has the layer kept the groups this process's sockets joined?

    The process keeps a marker key in Redis (set with a day's expiry, refreshed at each check).
    Missing at a check means Redis lost its data, and the epoch moves on: every socket joins
    its groups again at its next ping. It is checked at most every LAYER_CHECK_SECONDS, and at
    the next ping after the loop's layer reader met an error (the restart itself). A layer that
    is not Redis (the in-memory layer of the embedded default) never loses its data: epoch 0.
    """

    MARKER_TTL = 86400

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.marker = f"{getattr(layer, 'prefix', 'smartchat')}:process:{uuid.uuid4().hex}"
        self.epoch = 0
        self.checked_at = float("-inf")
        self.suspect = True
        self.checking: asyncio.Future | None = None

    @staticmethod
    def of(layer: Any) -> LayerMemory | None:
        if not hasattr(layer, "connection") or not hasattr(layer, "receive_single"):
            return None
        memories = _memories.setdefault(asyncio.get_running_loop(), {})
        memory = memories.get(layer)
        if memory is None:
            memory = memories[layer] = LayerMemory(layer)
        return memory

    async def current(self) -> int | None:
        """The epoch of the layer's data now; None when Redis could not be asked (join again)."""
        if not self.suspect and time.monotonic() - self.checked_at < LAYER_CHECK_SECONDS:
            return self.epoch
        if self.checking is None:
            self.checking = asyncio.ensure_future(self._check())
        try:
            return await asyncio.shield(self.checking)
        except Exception:
            return None

    async def _check(self) -> int:
        try:
            connection = self.layer.connection(0)
            kept = await connection.exists(self.marker)
            await connection.set(self.marker, 1, ex=self.MARKER_TTL)  # kept for another day
            if not kept:
                self.epoch += 1
            self.suspect = False
            self.checked_at = time.monotonic()
            return self.epoch
        finally:
            self.checking = None


# Each event loop's memory of each layer (a test process runs several loops, one after another).
_memories: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Any, LayerMemory]] = weakref.WeakKeyDictionary()


class LayerReader:
    """One reader of the Redis channel layer for all the sockets of an event loop.

    Every socket's channel (``new_channel``) is a name on one Redis list of the process
    (``<client prefix>!``). channels_redis's own ``receive`` gives each waiting socket an
    asyncio.Queue and two tasks of its own (about 7 KiB per idle socket, issue 11); here one
    task reads that list (``receive_single``, what channels_redis's ``receive`` calls) and
    hands each message to its socket's callback. Nothing else in the process may ``receive``
    on a channel from ``new_channel`` meanwhile (both would read the one list):
    smartchat/health.py's round trip uses a channel of its own, outside it.

    A layer without ``receive_single`` (the in-memory layer of the embedded default) is read
    per socket, as Channels does. As channels_redis, one event loop reads at a time.
    """

    def __init__(self, layer: Any, loop: asyncio.AbstractEventLoop, list_name: str) -> None:
        self.layer, self.loop, self.list_name = layer, loop, list_name
        self.sockets: dict[str, Callable[[dict[str, Any]], None]] = {}
        self.task: asyncio.Task | None = None

    @staticmethod
    def of(layer: Any, channel_name: str) -> LayerReader | None:
        """The running loop's reader for this layer, made if need be; None if the layer has none."""
        if not hasattr(layer, "receive_single") or "!" not in channel_name:
            return None
        loop = asyncio.get_running_loop()
        reader = _readers.get(layer)
        if reader is None or not reader.sockets:
            reader = _readers[layer] = LayerReader(layer, loop, layer.non_local_name(channel_name))
        elif reader.loop is not loop:
            raise RuntimeError("Two event loops are trying to receive() on one channel layer at once!")
        return reader

    def add(self, channel_name: str, deliver: Callable[[dict[str, Any]], None]) -> None:
        self.sockets[channel_name] = deliver
        if self.task is None:
            self.task = self.loop.create_task(self._run())

    def remove(self, channel_name: str) -> None:
        self.sockets.pop(channel_name, None)
        if not self.sockets and self.task is not None:
            self.task.cancel()  # messages read meanwhile stay in channels_redis's backup list
            self.task = None

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                channels, message = await self.layer.receive_single(self.list_name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                memory = LayerMemory.of(self.layer)
                if memory is not None:
                    memory.suspect = True  # Redis may come back empty: ask at the next ping
                log.warning("channel layer receive failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.5
            for channel in channels if isinstance(channels, list) else (channels,):
                deliver = self.sockets.get(channel)
                if deliver is not None:  # else its socket has closed: as channels_redis, dropped
                    deliver(message)


# The reader of each channel layer (one per process in practice), while it has sockets.
_readers: dict[Any, LayerReader] = {}


def is_id(value: Any) -> bool:
    """Is ``value`` from a frame a database id (or 0): an int, not a bool, within bigint."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


class LiveJsonConsumer(AsyncJsonWebsocketConsumer):
    """A JSON socket whose handlers run without first queueing in the database thread.

    Channels >= 4.2 runs close_old_connections through sync_to_async before every handler,
    i.e. in the one thread that all database work of the process shares, so every event
    pushed to every socket waited behind the ORM work of everyone else. Our handlers reach
    the database only through ``socket_db``, which closes stale connections itself.
    """

    # The label of this socket in smartchat_sockets_open (docs/operations.md).
    socket_kind = "other"
    _counted = False

    async def accept(self, subprotocol: str | None = None, headers: list | None = None) -> None:
        await super().accept(subprotocol, headers)
        if not self._counted:
            self._counted = True
            metrics.socket_opened(self.socket_kind)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        try:
            await super().websocket_disconnect(message)
        finally:
            if self._counted:
                self._counted = False
                metrics.socket_closed(self.socket_kind)

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- Two ways in besides the client: the relay (events) and the channel layer -------------
    # Events come from this process's relay (relay.py), which reads the event log: no Redis on
    # that path. The channel layer still carries what is not stored (typing, presence,
    # notices); Redis away must not close the socket, so its errors are logged and retried,
    # and the groups are joined again at a ping once Redis may have forgotten them (LayerMemory).

    async def __call__(self, scope, receive, send) -> None:
        # As AsyncConsumer.__call__, but a channel layer that fails to receive is retried
        # instead of ending the socket, and the socket always leaves its relay.
        self.scope = scope
        self.relay: relay.Relay | None = None
        self.layer_groups: tuple[str, ...] = ()
        self.layer_epoch: int | None = None  # the layer's epoch when the groups were last joined
        self.layer_joined_at = 0.0
        self.relay_pending: deque[dict[str, Any]] | None = None
        self.relay_drain: asyncio.Task | None = None
        # One message handled at a time, whichever way it came (as Channels does for its two).
        self.handling = asyncio.Lock()
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send
        reader = None
        try:
            if self.channel_layer is None:
                await self._dispatch_from(receive)
                return
            self.channel_name = await self.channel_layer.new_channel()
            reader = LayerReader.of(self.channel_layer, self.channel_name)
            if reader is None:  # read per socket, as Channels does
                self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
                await await_many_dispatch([receive, self._layer_receive], self._dispatch_one)
            else:
                # The loop's reader queues the layer's messages with the relay's (one task
                # while there are some); the client's frames are read here, without a task.
                reader.add(self.channel_name, self.queue_message)
                await self._dispatch_from(receive)
        except StopConsumer:
            pass
        finally:
            if reader is not None:
                reader.remove(self.channel_name)
            await self.leave_relay()
            if self.relay_drain is not None:
                self.relay_drain.cancel()

    async def _dispatch_from(self, receive) -> None:
        while True:
            await self._dispatch_one(await receive())

    async def _dispatch_one(self, message: dict[str, Any]) -> None:
        async with self.handling:
            await self.dispatch(message)

    async def _layer_receive(self) -> dict[str, Any]:
        delay = 0.5
        while True:
            try:
                return await self.channel_receive()
            except (asyncio.CancelledError, StopConsumer):
                raise
            except Exception as exc:
                log.warning("channel layer receive failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def join_layer(self, groups: Iterable[str] | None = None) -> bool:
        """Join the channel-layer groups; with no argument (a ping), again only if the layer may
        have lost them (``LayerMemory``, ``LAYER_REJOIN_SECONDS``). False if the layer is away."""
        memory = LayerMemory.of(self.channel_layer)
        epoch = await memory.current() if memory is not None else 0
        if groups is not None:
            self.layer_groups = tuple(groups)
        elif (
            epoch is not None
            and epoch == self.layer_epoch
            and time.monotonic() - self.layer_joined_at < LAYER_REJOIN_SECONDS
        ):
            return True
        for attempt in (1, 2):  # the first may meet a connection a restarted Redis closed
            try:
                for group in self.layer_groups:
                    await self.channel_layer.group_add(group, self.channel_name)
                # The epoch read before the joins: a loss meanwhile moves it on, and the next
                # ping joins again.
                self.layer_epoch, self.layer_joined_at = epoch, time.monotonic()
                return True
            except Exception as exc:
                if attempt == 2:
                    log.warning("could not join channel-layer groups (%s): typing and presence wait for it", exc)
        self.layer_epoch = None
        return False

    async def leave_layer(self) -> None:
        try:
            for group in self.layer_groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        except Exception as exc:
            log.warning("could not leave channel-layer groups (%s); they expire", exc)

    async def join_relay(self, groups: Iterable[str]) -> None:
        """Hear of events through this process's relay: call before ``accept``."""
        self.relay = await relay.join(self, groups)

    async def leave_relay(self) -> None:
        current, self.relay = self.relay, None
        await relay.leave(self, current)

    def relay_message(self, message: dict[str, Any]) -> None:
        """From the relay (never blocks): dispatched in order, one at a time, by a task of ours."""
        if self.relay is None:
            return
        self.queue_message(message)

    def queue_message(self, message: dict[str, Any]) -> None:
        """A message to dispatch (the relay's, the channel layer's): in order, by a task while any wait."""
        if self.relay_pending is None:
            self.relay_pending = deque()
        self.relay_pending.append(message)
        if self.relay_drain is None or self.relay_drain.done():
            self.relay_drain = asyncio.ensure_future(self._drain_relay())

    async def _drain_relay(self) -> None:
        pending = self.relay_pending
        while pending:
            message = pending.popleft()
            try:
                await self._dispatch_one(message)
            except OSError:  # the client went away (uvicorn's ClientDisconnected): nothing more to send
                pending.clear()
                return
            except Exception:
                if self.relay is None:  # closed meanwhile
                    pending.clear()
                    return
                log.exception("could not pass %s on to a socket", message.get("type"))

    # --- Frames from the client: whatever arrives is answered, never raised ----------------
    # The parent raised on a binary or empty frame and on JSON the parser can't take (too
    # deep: RecursionError), which dropped the socket without a close frame and logged a
    # traceback per frame. Here each gets an error frame and the socket stays open.

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        return safejson.loads(text_data)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        if text_data is None:
            await self.refuse_frame("binary_frame", _("Send JSON text frames, not binary ones."))
            return
        try:
            content = await self.decode_json(text_data)
        except safejson.BadJSON:
            await self.refuse_frame("bad_json", _("The frame is not valid JSON."))
            return
        await self.receive_json(content, **kwargs)

    async def refuse_frame(self, code: str, message: str) -> None:
        """A frame that could not be read at all: say so (subclasses may also close)."""
        await self._error(code, message)

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "code": code, "message": message})

    async def send_shared(self, message: dict[str, Any], key: Any, frame: Callable[[], dict[str, Any]]) -> None:
        """Send a frame that many local sockets send alike, encoded once per ``key`` for all of them.

        The relay hands one message to every local socket of its groups: 300 agents' sockets
        then share one JSON encoding instead of making 300.
        """
        encoded = message.setdefault("_encoded", {})
        text = encoded.get(key)
        if text is None:
            text = encoded[key] = await self.encode_json(frame())
        await self.send(text_data=text)


class TypingThrottle:
    """At most one "typing" notice per key every TYPING_MIN_SECONDS, and "stopped" only after one.

    The page and the widget already send one every few seconds while someone types; this
    keeps a misbehaving client from flooding a conversation's viewers (each notice that
    passes costs a lookup through the gate).
    """

    def __init__(self) -> None:
        self.last: dict[Any, float] = {}

    def allows(self, key: Any, typing: bool) -> bool:
        now = time.monotonic()
        if not typing:
            return self.last.pop(key, None) is not None
        if now - self.last.get(key, -TYPING_MIN_SECONDS) < TYPING_MIN_SECONDS:
            return False
        if len(self.last) > 100:  # a socket types in a handful of conversations at most
            self.last.clear()
        self.last[key] = now
        return True
