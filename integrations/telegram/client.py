"""python-telegram-bot ``Bot``s pointed at ``settings.TELEGRAM_API_URL`` (the real API, a proxy
or the tests' fake server), kept open and reused by the worker's synchronous code.

PTB's ``Bot`` is async and its httpx client is bound to the event loop it first ran on. The
Celery worker is synchronous (a solo process, or a pool of threads for the polls), so each
thread gets one event loop of its own, kept for the thread's life, and on it one ``Bot`` per
token (and API address): every send and every ``getUpdates`` of that thread reuses the Bot's
open connections instead of opening, and shutting down, a client per call. Nothing here is
shared between threads; a forked child starts afresh. The least recently used Bots beyond
``CACHED_BOTS`` per thread are shut down (a token that changed, a channel removed).

``interrupt()`` (the worker is shutting down) cancels every long poll waiting in any thread
and refuses new ones, so a poll run ends at once rather than after Telegram's timeout.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

import telegram
from django.conf import settings

log = logging.getLogger(__name__)
T = TypeVar("T")
CACHED_BOTS = 32

stopping = threading.Event()  # set by interrupt(): the process is shutting down
_waiting: set[tuple[asyncio.AbstractEventLoop, asyncio.Task]] = set()
_waiting_lock = threading.Lock()
_local = threading.local()


class Interrupted(Exception):
    """A long poll was cancelled, or refused, because the worker is shutting down."""


def bot(token: str) -> telegram.Bot:
    """A new Bot (its own connections): for one-off calls, which shut it down themselves."""
    base = settings.TELEGRAM_API_URL
    return telegram.Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")


class _Thread:
    """This thread's event loop and its open Bots, newest use last."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.bots: OrderedDict[tuple[str, str], telegram.Bot] = OrderedDict()


def _here() -> _Thread:
    here = getattr(_local, "here", None)
    if here is None or here.pid != os.getpid() or here.loop.is_closed():
        here = _local.here = _Thread()
    return here


def _cached_bot(here: _Thread, token: str) -> telegram.Bot:
    key = (token, settings.TELEGRAM_API_URL)
    client = here.bots.pop(key, None) or bot(token)
    here.bots[key] = client
    while len(here.bots) > CACHED_BOTS:
        _, old = here.bots.popitem(last=False)
        _shut(here, old)
    return client


def _shut(here: _Thread, old: telegram.Bot) -> None:
    try:
        here.loop.run_until_complete(old.shutdown())
    except Exception as error:  # a connection that is already gone: nothing left to close
        log.debug("closing a telegram client failed (%s)", type(error).__name__)


def call(token: str, use: Callable[[telegram.Bot], Awaitable[T]], *, interruptible: bool = False) -> T:
    """``use(bot)`` on this thread's loop with its open Bot for ``token``; what it returns.

    For synchronous code only (a worker task, a sync view): a thread already running an event
    loop must await the Bot itself. ``interruptible``: a long poll, which ``interrupt()``
    cancels (raising ``Interrupted``).
    """
    here = _here()
    client = _cached_bot(here, token)
    task = here.loop.create_task(use(client))  # type: ignore[arg-type]
    if not interruptible:
        return here.loop.run_until_complete(task)
    entry = (here.loop, task)
    with _waiting_lock:
        _waiting.add(entry)
    try:
        if stopping.is_set():  # checked after registering: interrupt() can't slip in between
            task.cancel()
        return here.loop.run_until_complete(task)
    except asyncio.CancelledError:
        raise Interrupted() from None
    finally:
        with _waiting_lock:
            _waiting.discard(entry)


def interrupt() -> None:
    """The worker is shutting down: end every waiting long poll now, and start no new one."""
    stopping.set()
    with _waiting_lock:
        waiting = list(_waiting)
    for loop, task in waiting:
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:  # its loop has closed meanwhile
            pass


# The update types the channel asks for (getUpdates and setWebhook): messages, their edits, and
# presses of the consent question's buttons.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
