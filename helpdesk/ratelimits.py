"""Rate limits: every limit Smartchat enforces, named in one place, counted by the ``limits`` library.

A limit is a rate from settings (``RATE_LIMIT_*``, e.g. "30/minute; 300/hour" or "off") and a
key: a client address, a visitor, an API token, a signed-in user. Counts live in Redis when
``REDIS_URL`` is set, so every process shares them, and in this process's memory on the
embedded default. The moving window is exact: the N+1st hit within any window is refused.

Callers name a limit and the key they count by; going over raises ``RateLimited`` (an
``ActionError`` with ``retry_after`` in seconds), which HTTP answers as 429 with Retry-After
and a socket as an ``error`` frame. Channels (widget, and later Telegram, VK, e-mail) and the
API all share this module.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

# Imported whole with this module, before any request: limits imports its Redis client lazily,
# at the storage's first use, and checks the client's __version__ without the import lock, so
# the first hits of several threads at once (a cold server's first visitors) could read a
# half-imported module, find no version and raise ConfigurationError: a 500.
import redis  # noqa: F401
from django.conf import settings
from django.http import JsonResponse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from helpdesk.errors import ActionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str  # the counter's namespace in storage
    setting: str  # the Django setting (and environment variable) holding its rate
    message: Promise  # what the refused client is told


_SLOW_DOWN = _("You are sending messages too fast. Please wait a moment and try again.")

WIDGET_SESSIONS_PER_ADDRESS = Limit(
    "widget-sessions-address",
    "RATE_LIMIT_WIDGET_SESSIONS_PER_ADDRESS",
    _("Too many new chats were started from your network. Please try again later."),
)
WIDGET_RESUMES_PER_VISITOR = Limit(
    "widget-resumes-visitor",
    "RATE_LIMIT_WIDGET_RESUMES_PER_VISITOR",
    _("The chat was reloaded too often. Please wait a moment and try again."),
)
WIDGET_RESUMES_PER_ADDRESS = Limit(
    "widget-resumes-address",
    "RATE_LIMIT_WIDGET_RESUMES_PER_ADDRESS",
    _("The chat was reloaded too often. Please wait a moment and try again."),
)
WIDGET_CONVERSATIONS_PER_VISITOR = Limit(
    "widget-conversations-visitor", "RATE_LIMIT_WIDGET_CONVERSATIONS_PER_VISITOR", _SLOW_DOWN
)
WIDGET_CONVERSATIONS_PER_ADDRESS = Limit(
    "widget-conversations-address", "RATE_LIMIT_WIDGET_CONVERSATIONS_PER_ADDRESS", _SLOW_DOWN
)
WIDGET_MESSAGES_PER_VISITOR = Limit("widget-messages-visitor", "RATE_LIMIT_WIDGET_MESSAGES_PER_VISITOR", _SLOW_DOWN)
WIDGET_MESSAGES_PER_ADDRESS = Limit("widget-messages-address", "RATE_LIMIT_WIDGET_MESSAGES_PER_ADDRESS", _SLOW_DOWN)
WIDGET_UPLOADS_PER_VISITOR = Limit(
    "widget-uploads-visitor",
    "RATE_LIMIT_WIDGET_UPLOADS_PER_VISITOR",
    _("You are sending files too fast. Please wait a moment and try again."),
)
WIDGET_UPLOADS_PER_ADDRESS = Limit(
    "widget-uploads-address",
    "RATE_LIMIT_WIDGET_UPLOADS_PER_ADDRESS",
    _("You are sending files too fast. Please wait a moment and try again."),
)
API_PER_TOKEN = Limit(
    "api-token", "RATE_LIMIT_API_PER_TOKEN", _("Too many requests. Please wait a moment and try again.")
)
API_PER_USER = Limit("api-user", "RATE_LIMIT_API_PER_USER", _("Too many requests. Please wait a moment and try again."))

LIMITS = (
    WIDGET_SESSIONS_PER_ADDRESS,
    WIDGET_RESUMES_PER_VISITOR,
    WIDGET_RESUMES_PER_ADDRESS,
    WIDGET_CONVERSATIONS_PER_VISITOR,
    WIDGET_CONVERSATIONS_PER_ADDRESS,
    WIDGET_MESSAGES_PER_VISITOR,
    WIDGET_MESSAGES_PER_ADDRESS,
    WIDGET_UPLOADS_PER_VISITOR,
    WIDGET_UPLOADS_PER_ADDRESS,
    API_PER_TOKEN,
    API_PER_USER,
)


class RateLimited(ActionError):
    """A limit was reached: try again in ``retry_after`` seconds."""

    def __init__(self, limit: Limit, *, retry_after: int):
        super().__init__(str(limit.message), code="rate_limited")
        self.limit = limit
        self.retry_after = retry_after

    def response(self) -> JsonResponse:
        """The HTTP answer: 429, Retry-After, and the usual error shape."""
        response = JsonResponse({"error": {"code": self.code, "message": self.message}}, status=429)
        response["Retry-After"] = str(self.retry_after)
        return response


def address_key(address: str | None) -> str | None:
    """The key an address counts under: itself, or for IPv6 its /64 (what one client is given)."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@functools.cache
def _items(rate: str) -> tuple[RateLimitItem, ...]:
    return () if rate == "off" else tuple(parse_many(rate))


_limiter_lock = threading.Lock()
_limiters: dict[tuple[str, str], MovingWindowRateLimiter] = {}


def _limiter(url: str, prefix: str) -> MovingWindowRateLimiter:
    """One storage (one Redis connection pool) per process, whichever thread comes first."""
    limiter = _limiters.get((url, prefix))
    if limiter is None:
        with _limiter_lock:
            limiter = _limiters.get((url, prefix))
            if limiter is None:
                limiter = _limiters[url, prefix] = _make_limiter(url, prefix)
    return limiter


def _make_limiter(url: str, prefix: str) -> MovingWindowRateLimiter:
    options: dict[str, Any] = {"wrap_exceptions": True}
    if not url.startswith("memory"):
        options.update(key_prefix=prefix, socket_timeout=2, socket_connect_timeout=2)
    return MovingWindowRateLimiter(storage_from_string(url, **options))


def limiter() -> MovingWindowRateLimiter:
    return _limiter(settings.RATE_LIMIT_STORAGE_URL, settings.RATE_LIMIT_KEY_PREFIX)


def hit(*checks: tuple[Limit, str | None]) -> None:
    """Count one event against each (limit, key), in order; raise ``RateLimited`` at the first one over.

    A key of None (no address known) is not counted. Limits after a refused one are not
    counted either, so a narrow limit (one visitor) refuses before a wide one (their whole
    network) is spent.
    """
    strategy = limiter()
    for limit, key in checks:
        if key is None:
            continue
        for item in _items(getattr(settings, limit.setting)):
            try:
                if strategy.hit(item, limit.name, key):
                    continue
                reset_at = strategy.get_window_stats(item, limit.name, key).reset_time
            except StorageError as exc:
                # Redis down: the channel layer is down too; refusing every request would not help.
                log.warning("rate limits not counted: %s", exc.storage_error)
                return
            # Not logged here: HTTP logs the 429 already (django.request); sockets log one line.
            raise RateLimited(limit, retry_after=max(1, math.ceil(reset_at - time.time())))


def reset() -> None:
    """Forget every count (tests)."""
    limiter().storage.reset()
