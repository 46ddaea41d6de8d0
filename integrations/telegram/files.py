"""A customer's file from Telegram: ``getFile``, then the download, never past the size limit.

``inbound.attachments`` describes each file (``file_id``, name, type, ``size``, ``kind``); the
worker asks ``fetch_file`` for its bytes. ``getFile`` (python-telegram-bot) gives the file's
size and its path on Telegram's file server; PTB makes that path a URL under
``TELEGRAM_API_URL/file/bot<token>/``. Bots may download at most 20 MB: Telegram answers a
larger file's ``getFile`` with 400 "file is too big".

The limit is kept without reading past it: the size the update described, then the size
``getFile`` reports, are checked before anything is downloaded; the download itself is
streamed (httpx, the client PTB itself uses: PTB's own download reads a whole body into
memory at once) and stopped as soon as it passes ``max_bytes``.

Failures are ``FetchError``s: retryable when Telegram asks us to wait (429, its
``retry_after``) or can't be reached (timeouts, 5xx), permanent when the file is gone or
refused (a wrong or expired ``file_id``, 404, "file is too big", a refused token). Their text
is our own words or Telegram's description with the token scrubbed out: never the token, and
never a download URL (which holds it).
"""

from __future__ import annotations

import io
import posixpath
import warnings
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import telegram
import telegram.warnings
from asgiref.sync import async_to_sync
from django.utils.translation import gettext as _

from helpdesk.conversations.adapters import FetchedFile, FetchError
from helpdesk.conversations.attachments import human_size
from helpdesk.conversations.models import Channel
from helpdesk.conversations.secrets import SecretsUnreadable

from .client import bot
from .outbound import scrub

BOT_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API's limit on files a bot may download
CHUNK = 64 * 1024
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def _too_large(max_bytes: int) -> FetchError:
    limit = human_size(min(max_bytes, BOT_DOWNLOAD_LIMIT))
    return FetchError(_("The file is larger than %(limit)s.") % {"limit": limit}, permanent=True, too_large=True)


def _seconds(exc: telegram.error.RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that it will become a timedelta; both are handled
        warnings.simplefilter("ignore", telegram.warnings.PTBDeprecationWarning)
        wait = exc.retry_after
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


def _refused(exc: telegram.error.TelegramError, token: str) -> str:
    return _("Telegram refused the file: %(reason)s") % {"reason": scrub(exc.message, token)}


def _answered(status: int) -> str:
    return _("Telegram's file server answered HTTP %(status)s.") % {"status": status}


async def _get_file(token: str, file_id: str) -> telegram.File:
    client = bot(token)
    try:
        return await client.get_file(file_id)
    finally:
        await client.shutdown()


def _located(token: str, file_id: str, max_bytes: int) -> telegram.File:
    """``getFile``'s answer, or the ``FetchError`` its failure means."""
    try:
        found = async_to_sync(_get_file)(token, file_id)
    except telegram.error.RetryAfter as exc:
        raise FetchError(scrub(exc.message, token), permanent=False, retry_after=_seconds(exc)) from None
    except telegram.error.InvalidToken:
        raise FetchError(_("Telegram did not accept the bot token."), permanent=True) from None
    except telegram.error.BadRequest as exc:  # wrong or expired file_id; "file is too big"
        if "too big" in exc.message.lower():
            raise _too_large(max_bytes) from None
        raise FetchError(_refused(exc, token), permanent=True) from None
    except telegram.error.Forbidden as exc:
        raise FetchError(_refused(exc, token), permanent=True) from None
    except telegram.error.TelegramError as exc:  # NetworkError, TimedOut, 5xx, Conflict…: try again
        words = _("Telegram could not be reached: %(reason)s") % {"reason": scrub(exc.message, token)}
        raise FetchError(words, permanent=False) from None
    if found.file_size is not None and found.file_size > max_bytes:
        raise _too_large(max_bytes)
    if not found.file_path:
        raise FetchError(_("Telegram gave no path to download the file from."), permanent=True)
    return found


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return None


def download(url: str, max_bytes: int) -> bytes:
    """The body at ``url``, streamed and given up as soon as it passes ``max_bytes``."""
    buffer = io.BytesIO()
    try:
        with httpx.stream("GET", url, timeout=TIMEOUT, follow_redirects=False) as response:
            status = response.status_code
            if status == 429:
                wait = _retry_after(response)
                raise FetchError(_("Telegram asked to wait (HTTP 429)."), permanent=False, retry_after=wait)
            if status >= 500 or status in (408, 409):
                raise FetchError(_answered(status), permanent=False)
            if status != 200:  # 404: the path expired (it lasts an hour) or never was; 401: the token
                raise FetchError(_answered(status), permanent=True)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes)
            for chunk in response.iter_bytes(CHUNK):
                buffer.write(chunk)
                if buffer.tell() > max_bytes:
                    raise _too_large(max_bytes)
    except httpx.HTTPError as exc:  # the URL holds the token: only the error's kind is kept
        words = _("Telegram's file server could not be reached (%(what)s).") % {"what": type(exc).__name__}
        raise FetchError(words, permanent=False) from None
    return buffer.getvalue()


def fetch_file(channel: Channel, source: dict[str, Any], *, max_bytes: int) -> FetchedFile:
    file_id = source.get("file_id")
    if not isinstance(file_id, str) or not file_id:
        raise FetchError(_("The message described no Telegram file."), permanent=True)
    size = source.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size > min(max_bytes, BOT_DOWNLOAD_LIMIT):
        raise _too_large(max_bytes)  # Telegram said so in the update: not even asked for
    try:
        token = channel.secret_values().get("bot_token", "")
    except SecretsUnreadable:  # CHANNEL_SECRET_KEYS changed: nothing to fetch with until it is fixed
        raise FetchError(_("The channel's bot token can't be read."), permanent=False) from None
    if not token:
        raise FetchError(_("The channel has no bot token."), permanent=True)
    found = _located(token, file_id, max_bytes)
    data = download(found.file_path, max_bytes)
    return FetchedFile(data=data, name=posixpath.basename(urlsplit(found.file_path).path))
