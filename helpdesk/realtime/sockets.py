"""What every JSON socket shares, the inbox's and the channels' (the widget's visitor socket).

Channel integrations build their sockets from these and never import the inbox consumer.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from channels.consumer import get_handler_name
from channels.db import DatabaseSyncToAsync
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils.translation import gettext as _

from helpdesk import safejson
from helpdesk.observability import metrics

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
