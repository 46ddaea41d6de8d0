"""A fake of the Telegram Bot API on 127.0.0.1, for tests that drive real client libraries.

It speaks https://core.telegram.org/bots/api over plain HTTP: ``/bot<token>/<method>`` with
parameters in the query string, ``application/x-www-form-urlencoded``, ``application/json`` or
``multipart/form-data``, answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code":
..., "description": ...}``, and serves files at ``/file/bot<token>/<file_path>``.

    with FakeTelegram() as fake:
        fake.add_bot(TOKEN, username="acme_bot")
        ann = fake.user(first_name="Ann")
        fake.push_update(TOKEN, fake.text_update(TOKEN, ann, "hello"))
        bot = telegram.Bot(TOKEN, base_url=fake.api_url, base_file_url=fake.file_url)

The server runs an aiohttp application on its own event loop in a daemon thread. Every public
method is thread-safe and may be called from the test's thread (or any other).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import io
import itertools
import json
import mimetypes
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

try:  # Pillow gives real dimensions and real thumbnails; without it the fake still works.
    from PIL import Image
except ImportError:  # pragma: no cover
    Image = None

__all__ = ["Call", "FakeTelegram", "Sent", "SentFile", "WebhookDelivery", "fake_telegram"]

# Update types a bot gets when it never asked for a list (or asked for an empty one).
DEFAULT_ALLOWED = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "purchased_paid_media",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
    }
)
GET_FILE_LIMIT = 20 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
NGINX_PAGES = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
}
FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAA",
    "document": "BQACAgIAAxkBAA",
    "voice": "AwACAgIAAxkBAA",
    "video": "BAACAgIAAxkBAA",
    "sticker": "CAACAgIAAxkBAA",
}
FILE_DIR = {"photo": "photos", "document": "documents", "voice": "voice", "video": "videos", "sticker": "stickers"}


class ApiError(Exception):
    """An error answer of the Bot API: status code, description and optional parameters."""

    def __init__(self, code: int, description: str, parameters: dict | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


def bad_request(what: str) -> ApiError:
    return ApiError(400, f"Bad Request: {what}")


@dataclass
class SentFile:
    field: str  # "photo" or "document"
    file_name: str | None
    mime_type: str | None
    data: bytes | None
    source: str  # "upload", "file_id" or "url"
    file_id: str  # the file_id the sent message carries


@dataclass
class Sent:
    """A message the bot sent (sendMessage, sendPhoto, sendDocument) or edited (editMessage*)."""

    token: str
    method: str
    chat_id: int
    message_id: int
    text: str | None
    caption: str | None
    parse_mode: str | None
    files: list[SentFile]
    reply_markup: dict | None
    reply_to_message_id: int | None
    params: dict
    message: dict  # the Message object returned to the client


@dataclass
class Call:
    """Every request that reached a known method: name as called, parameters, HTTP status answered."""

    token: str
    method: str
    params: dict
    status: int


@dataclass
class Download:
    """A request to the file server (``/file/bot<token>/<file_path>``) and what it answered."""

    token: str
    file_path: str
    status: int  # 0 when the connection was dropped
    size: int  # bytes in the answer's body


@dataclass
class WebhookDelivery:
    token: str
    url: str
    update_id: int
    secret_token: str | None
    status: int | None  # None when the connection failed
    error: str | None


@dataclass
class _Fault:
    method: str
    times: int
    status: int | None
    retry_after: int | None
    description: str | None
    drop: bool
    after: bool
    delay: float
    stall: float = 0.0  # after the method took effect, hold the answer this long


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    report_size: bool = True  # getFile's file_size is optional in the Bot API


@dataclass
class _Bot:
    token: str
    user: dict
    can_join_groups: bool
    can_read_all_group_messages: bool
    revoked: bool = False
    updates: list[dict] = field(default_factory=list)
    next_update_id: int = 0
    allowed_updates: frozenset[str] = DEFAULT_ALLOWED
    webhook: dict | None = None
    webhook_error: tuple[int, str] | None = None
    webhook_task: asyncio.Task | None = None
    poll_seq: int = 0
    polling: bool = False
    chats: dict[int, dict] = field(default_factory=dict)
    blocked: set[int] = field(default_factory=set)
    messages: dict[tuple[int, int], dict] = field(default_factory=dict)
    next_message_id: dict[int, int] = field(default_factory=dict)
    files: dict[str, _File] = field(default_factory=dict)
    files_by_path: dict[str, _File] = field(default_factory=dict)
    photo_sets: dict[str, list[dict]] = field(default_factory=dict)
    callback_queries: dict[str, bool] = field(default_factory=dict)
    faults: list[_Fault] = field(default_factory=list)
    updates_event: asyncio.Event | None = None
    webhook_event: asyncio.Event | None = None

    @property
    def bot_id(self) -> int:
        return self.user["id"]


def _now() -> int:
    return int(time.time())


def _random_id(prefix: str, nbytes: int = 45) -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(nbytes)).decode().rstrip("=")


def _image_size(data: bytes) -> tuple[int, int] | None:
    if Image is None:  # pragma: no cover
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except Exception:
        return None


def _thumbnail(data: bytes, side: int) -> tuple[bytes, int, int] | None:
    if Image is None:  # pragma: no cover
        return None
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
            img.thumbnail((side, side))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=80)
            return out.getvalue(), img.width, img.height
    except Exception:
        return None


class FakeTelegram:
    """The fake Bot API server. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        *,
        webhook_retry_delay: float = 0.05,
        webhook_max_attempts: int = 5,
        webhook_timeout: float = 5.0,
        max_poll_timeout: float = 50.0,
        first_update_id: int = 100_000_001,
    ):
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_timeout = webhook_timeout
        self.max_poll_timeout = max_poll_timeout
        self.first_update_id = first_update_id
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._bots: dict[str, _Bot] = {}
        self._sent: list[Sent] = []
        self._calls: list[Call] = []
        self._peers: set[tuple] = set()
        self._deliveries: list[WebhookDelivery] = []
        self._downloads: list[Download] = []
        self._user_ids = itertools.count(700_000_001)
        self._group_ids = itertools.count(4_000_000_001)
        self._file_counter = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stopping = False
        self.port: int | None = None
        self._methods = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "sendchataction": self._send_chat_action,
            "getfile": self._get_file,
            "getchat": self._get_chat,
            "answercallbackquery": self._answer_callback_query,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """What a client takes as its base URL: requests go to ``{api_url}<token>/<method>``."""
        return f"{self.url}/bot"

    @property
    def file_url(self) -> str:
        """What a client takes as its file base URL: ``{file_url}<token>/<file_path>``."""
        return f"{self.url}/file/bot"

    def start(self) -> FakeTelegram:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_server())
            except BaseException as exc:  # pragma: no cover
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_server())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-telegram", daemon=True)
        self._thread.start()
        if not ready.wait(10):  # pragma: no cover
            raise RuntimeError("fake Telegram did not start")
        if errors:  # pragma: no cover
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        with self._lock:
            self._stopping = True
        self._loop.call_soon_threadsafe(self._wake_everything)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start_server(self) -> None:
        app = web.Application(client_max_size=UPLOAD_LIMIT + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.webhook_timeout))

    async def _stop_server(self) -> None:
        with self._lock:
            bots = list(self._bots.values())
        tasks = [b.webhook_task for b in bots if b.webhook_task and not b.webhook_task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def _wake_everything(self) -> None:
        with self._lock:
            bots = list(self._bots.values())
        for bot in bots:
            self._wake(bot)

    def _wake(self, bot: _Bot) -> None:
        # Runs on the loop: long polls and the webhook sender look at the queue again.
        if bot.updates_event is not None:
            bot.updates_event.set()
        if bot.webhook_event is not None:
            bot.webhook_event.set()

    def _wake_soon(self, bot: _Bot) -> None:
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake, bot)

    # ------------------------------------------------------------------ bots and state

    def add_bot(
        self,
        token: str,
        *,
        username: str = "fake_bot",
        first_name: str | None = None,
        can_join_groups: bool = True,
        can_read_all_group_messages: bool = False,
    ) -> dict:
        """Registers a bot; returns its User object. A ``<digits>:<secret>`` token gives the bot id."""
        head = token.split(":", 1)[0]
        bot_id = int(head) if head.isdigit() else next(self._user_ids)
        user = {"id": bot_id, "is_bot": True, "first_name": first_name or username, "username": username}
        with self._lock:
            self._bots[token] = _Bot(
                token=token,
                user=user,
                can_join_groups=can_join_groups,
                can_read_all_group_messages=can_read_all_group_messages,
                next_update_id=self.first_update_id,
            )
        return dict(user)

    def revoke(self, token: str) -> None:
        """The token stops working: every request with it gets 401 Unauthorized."""
        with self._lock:
            self._bot(token).revoked = True

    def _bot(self, token: str) -> _Bot:
        try:
            return self._bots[token]
        except KeyError:
            raise KeyError(f"no bot with token {token!r}; call add_bot first") from None

    def user(
        self,
        first_name: str = "Ann",
        *,
        last_name: str | None = None,
        username: str | None = None,
        id: int | None = None,
        language_code: str | None = "en",
        is_premium: bool | None = None,
    ) -> dict:
        """A User object for a person (ids are unique within this fake)."""
        user: dict[str, Any] = {"id": id or next(self._user_ids), "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        if is_premium:
            user["is_premium"] = True
        return user

    @staticmethod
    def private_chat(user: dict) -> dict:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        for key in ("last_name", "username"):
            if key in user:
                chat[key] = user[key]
        return chat

    def group(
        self, title: str = "Club", *, supergroup: bool = True, id: int | None = None, username: str | None = None
    ) -> dict:
        """A Chat object for a group (negative id) or a supergroup (``-100…`` id)."""
        if id is None:
            n = next(self._group_ids)
            id = -(1_000_000_000_000 + n) if supergroup else -(n % 1_000_000_000)
        chat: dict[str, Any] = {"id": id, "title": title, "type": "supergroup" if supergroup else "group"}
        if username:
            chat["username"] = username
        return chat

    def add_chat(self, token: str, chat: dict) -> None:
        """Makes a chat known to the bot without an update (pushing an update from it does that too)."""
        with self._lock:
            self._bot(token).chats[chat["id"]] = dict(chat)

    def block(self, token: str, chat_id: int) -> None:
        """Sends to this chat get 403 (blocked by the user, or kicked from the group)."""
        with self._lock:
            self._bot(token).blocked.add(int(chat_id))

    def unblock(self, token: str, chat_id: int) -> None:
        with self._lock:
            self._bot(token).blocked.discard(int(chat_id))

    def fail_next(
        self,
        token: str,
        method: str = "*",
        status: int | None = 429,
        *,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
        drop: bool = False,
        after: bool = False,
        delay: float = 0.0,
        stall: float = 0.0,
    ) -> None:
        """The next ``times`` calls of ``method`` (``"*"``: any method, names case-insensitive) fail.

        ``method="file"`` faults the file server instead (downloads of ``/file/bot<token>/…``;
        never matched by ``"*"``).

        ``status=429`` answers "Too Many Requests: retry after N" with ``parameters.retry_after``
        (N = ``retry_after``, default 1). 502/503/504 answer nginx's HTML page, as Telegram's
        front end does; other statuses a JSON error with ``description``. ``drop=True`` closes the
        connection without an answer: before doing anything, or with ``after=True`` after the
        method took effect (a message is sent, but the client never learns it). ``delay`` waits
        that many seconds first (with ``status=None`` and no drop, the call then succeeds).
        ``stall`` (with ``status=None``) lets the method take effect, then holds the answer that
        many seconds: a client whose read timeout is shorter gives up on a message that was sent.
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        fault = _Fault(method.lower(), times, status, retry_after, description, drop, after, delay, stall)
        with self._lock:
            self._bot(token).faults.append(fault)

    def drop_next(self, token: str, method: str = "*", *, after: bool = False, times: int = 1) -> None:
        """Shortcut: close the connection without answering (see ``fail_next``)."""
        self.fail_next(token, method, None, drop=True, after=after, times=times)

    def stall_next(self, token: str, method: str = "*", seconds: float = 5.0, *, times: int = 1) -> None:
        """Shortcut: the method takes effect, and its answer comes ``seconds`` late (see ``fail_next``)."""
        self.fail_next(token, method, None, stall=seconds, times=times)

    def _take_fault(self, bot: _Bot, method: str, *, exact: bool = False) -> _Fault | None:
        for fault in bot.faults:
            if fault.method == method.lower() or (fault.method == "*" and not exact):
                fault.times -= 1
                if fault.times <= 0:
                    bot.faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------ what the bot did

    @property
    def sent(self) -> list[Sent]:
        with self._lock:
            return list(self._sent)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @property
    def connections(self) -> int:
        """How many TCP connections Bot API requests came in on (one per client address and port)."""
        with self._lock:
            return len(self._peers)

    @property
    def downloads(self) -> list[Download]:
        """Every request to the file server, in order."""
        with self._lock:
            return list(self._downloads)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def wait_for(self, predicate, timeout: float = 5.0) -> bool:
        """Waits (bounded) until ``predicate(fake)`` is true; returns whether it became true."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def wait_for_sent(self, count: int = 1, timeout: float = 5.0) -> list[Sent]:
        """Waits until at least ``count`` messages were sent; raises AssertionError on timeout."""
        if not self.wait_for(lambda f: len(f._sent) >= count, timeout):
            raise AssertionError(f"expected {count} sent messages within {timeout}s, got {len(self._sent)}")
        return self.sent

    def pending_updates(self, token: str) -> list[dict]:
        """The bot's queue: updates not yet confirmed by getUpdates or delivered to the webhook."""
        with self._lock:
            return copy.deepcopy(self._bot(token).updates)

    def webhook(self, token: str) -> dict | None:
        with self._lock:
            hook = self._bot(token).webhook
            return dict(hook) if hook else None

    def message(self, token: str, chat_id: int, message_id: int) -> dict | None:
        """The current state of a message the fake knows (sent, received, edited)."""
        with self._lock:
            msg = self._bot(token).messages.get((int(chat_id), int(message_id)))
            return copy.deepcopy(msg) if msg else None

    def add_file(
        self,
        token: str,
        data: bytes,
        *,
        kind: str = "document",
        file_name: str | None = None,
        mime_type: str | None = None,
        report_size: bool = True,
    ) -> str:
        """Registers a file for the bot (getFile and the download work); returns its file_id.

        ``report_size=False``: getFile leaves out ``file_size`` (optional in the Bot API)."""
        with self._lock:
            f = self._register_file(self._bot(token), kind, data, file_name=file_name, mime_type=mime_type)
            f.report_size = report_size
            return f.file_id

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ update builders

    def _next_message_id(self, bot: _Bot, chat_id: int) -> int:
        n = bot.next_message_id.get(chat_id, 1)
        bot.next_message_id[chat_id] = n + 1
        return n

    def _incoming(self, token: str, user: dict, chat: dict | None, content: dict, reply_to: dict | None) -> dict:
        bot = self._bot(token)
        chat = dict(chat) if chat else self.private_chat(user)
        msg: dict[str, Any] = {
            "message_id": self._next_message_id(bot, chat["id"]),
            "from": dict(user),
            "chat": chat,
            "date": _now(),
        }
        if reply_to is not None:
            msg["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
        msg.update(content)
        return msg

    def text_update(
        self,
        token: str,
        user: dict,
        text: str,
        *,
        chat: dict | None = None,
        reply_to: dict | None = None,
        entities: list[dict] | None = None,
    ) -> dict:
        """A new text message from ``user`` (in their private chat, or in ``chat``: a group)."""
        with self._lock:
            content: dict[str, Any] = {"text": text}
            if entities:
                content["entities"] = entities
            return {"message": self._incoming(token, user, chat, content, reply_to)}

    def start_update(self, token: str, user: dict, payload: str | None = None) -> dict:
        """``/start`` (with the deep-link payload of ``t.me/<bot>?start=<payload>``)."""
        text = f"/start {payload}" if payload else "/start"
        return self.text_update(token, user, text, entities=[{"type": "bot_command", "offset": 0, "length": 6}])

    def _photo_sizes(self, bot: _Bot, data: bytes, width: int | None, height: int | None) -> list[dict]:
        size = _image_size(data)
        if width is None or height is None:
            width, height = size or (1280, 960)
        sizes: list[dict] = []
        if size:
            for side in (90, 320, 800):
                if max(width, height) > side:
                    thumb = _thumbnail(data, side)
                    if thumb:
                        f = self._register_file(bot, "photo", thumb[0], width=thumb[1], height=thumb[2])
                        sizes.append(self._photo_size(f))
        biggest = self._register_file(bot, "photo", data, width=width, height=height)
        sizes.append(self._photo_size(biggest))
        for s in sizes:
            bot.photo_sets[s["file_id"]] = sizes
        return sizes

    @staticmethod
    def _photo_size(f: _File) -> dict:
        return {
            "file_id": f.file_id,
            "file_unique_id": f.file_unique_id,
            "file_size": len(f.data),
            "width": f.width,
            "height": f.height,
        }

    def photo_update(
        self,
        token: str,
        user: dict,
        data: bytes,
        *,
        caption: str | None = None,
        chat: dict | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> dict:
        """A photo: several PhotoSize objects, smallest first; the largest downloads as ``data``."""
        with self._lock:
            bot = self._bot(token)
            content: dict[str, Any] = {"photo": self._photo_sizes(bot, data, width, height)}
            if caption is not None:
                content["caption"] = caption
            return {"message": self._incoming(token, user, chat, content, None)}

    def _media_update(
        self, token: str, user: dict, kind: str, obj: dict, caption: str | None, chat: dict | None
    ) -> dict:
        content: dict[str, Any] = {kind: obj}
        if caption is not None:
            content["caption"] = caption
        return {"message": self._incoming(token, user, chat, content, None)}

    def document_update(
        self,
        token: str,
        user: dict,
        data: bytes,
        *,
        file_name: str = "file.pdf",
        mime_type: str | None = None,
        caption: str | None = None,
        chat: dict | None = None,
    ) -> dict:
        mime_type = mime_type or mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        with self._lock:
            f = self._register_file(self._bot(token), "document", data, file_name=file_name, mime_type=mime_type)
            obj = {
                "file_name": file_name,
                "mime_type": mime_type,
                "file_id": f.file_id,
                "file_unique_id": f.file_unique_id,
                "file_size": len(data),
            }
            return self._media_update(token, user, "document", obj, caption, chat)

    def voice_update(
        self,
        token: str,
        user: dict,
        data: bytes,
        *,
        duration: int = 3,
        mime_type: str = "audio/ogg",
        caption: str | None = None,
        chat: dict | None = None,
    ) -> dict:
        with self._lock:
            f = self._register_file(self._bot(token), "voice", data, mime_type=mime_type)
            obj = {
                "duration": duration,
                "mime_type": mime_type,
                "file_id": f.file_id,
                "file_unique_id": f.file_unique_id,
                "file_size": len(data),
            }
            return self._media_update(token, user, "voice", obj, caption, chat)

    def video_update(
        self,
        token: str,
        user: dict,
        data: bytes,
        *,
        width: int = 640,
        height: int = 360,
        duration: int = 5,
        file_name: str = "video.mp4",
        mime_type: str = "video/mp4",
        caption: str | None = None,
        chat: dict | None = None,
    ) -> dict:
        with self._lock:
            f = self._register_file(self._bot(token), "video", data, file_name=file_name, mime_type=mime_type)
            obj = {
                "duration": duration,
                "width": width,
                "height": height,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_id": f.file_id,
                "file_unique_id": f.file_unique_id,
                "file_size": len(data),
            }
            return self._media_update(token, user, "video", obj, caption, chat)

    def sticker_update(
        self,
        token: str,
        user: dict,
        data: bytes,
        *,
        emoji: str = "👍",
        set_name: str | None = "FakeStickers",
        chat: dict | None = None,
        animated: bool = False,
        video: bool = False,
    ) -> dict:
        """A sticker: a static one is a WebP image, ``video=True`` a WebM video, ``animated=True``
        a gzipped Lottie animation (.tgs)."""
        if animated:
            mime_type = "application/x-tgsticker"
        else:
            mime_type = "video/webm" if video else "image/webp"
        with self._lock:
            f = self._register_file(self._bot(token), "sticker", data, mime_type=mime_type)
            obj: dict[str, Any] = {
                "width": 512,
                "height": 512,
                "emoji": emoji,
                "is_animated": animated,
                "is_video": video,
                "type": "regular",
                "file_id": f.file_id,
                "file_unique_id": f.file_unique_id,
                "file_size": len(data),
            }
            if set_name:
                obj["set_name"] = set_name
            return self._media_update(token, user, "sticker", obj, None, chat)

    def edited_update(self, token: str, message: dict, *, text: str | None = None, caption: str | None = None) -> dict:
        """``edited_message``: a new version of ``message`` (a Message dict from an earlier update)."""
        edited = copy.deepcopy(message)
        if text is not None:
            edited["text"] = text
        if caption is not None:
            edited["caption"] = caption
        edited["edit_date"] = max(_now(), edited["date"] + 1)
        return {"edited_message": edited}

    def callback_update(self, token: str, user: dict, data: str, message: dict) -> dict:
        """``callback_query``: ``user`` pressed an inline button with ``data`` under ``message``.

        ``message`` is the Message the bot sent (``Sent.message``, or what the client got back).
        """
        with self._lock:
            self._bot(token)
            query = {
                "id": str(secrets.randbelow(10**18) + 10**18),
                "from": dict(user),
                "message": copy.deepcopy(message),
                "chat_instance": str(-(secrets.randbelow(10**18) + 10**18)),
                "data": data,
            }
            return {"callback_query": query}

    def my_chat_member_update(
        self, token: str, user: dict, *, status: str = "kicked", chat: dict | None = None
    ) -> dict:
        """``my_chat_member``: the bot's status changed; ``"kicked"`` in a private chat = blocked.

        Pushing it has the effect it reports: kicked blocks the chat, member unblocks it.
        """
        with self._lock:
            bot = self._bot(token)
            old = "member" if status in ("kicked", "left") else "kicked"
            old_member: dict[str, Any] = {"status": old, "user": dict(bot.user)}
            new_member: dict[str, Any] = {"status": status, "user": dict(bot.user)}
            for member in (old_member, new_member):
                if member["status"] == "kicked":
                    member["until_date"] = 0
            return {
                "my_chat_member": {
                    "chat": dict(chat) if chat else self.private_chat(user),
                    "from": dict(user),
                    "date": _now(),
                    "old_chat_member": old_member,
                    "new_chat_member": new_member,
                }
            }

    def push_update(self, token: str, update: dict) -> int:
        """Queues an update for the bot (getUpdates or the webhook); returns its update_id.

        An update whose type the bot's ``allowed_updates`` excludes is dropped (returns -1), as
        Telegram never creates it. Chats, messages and callback queries in it become known.
        """
        with self._lock:
            bot = self._bot(token)
            update = copy.deepcopy(update)
            update.pop("update_id", None)
            kind = next(iter(update))
            self._absorb(bot, kind, update[kind])
            if kind not in bot.allowed_updates:
                return -1
            update_id = bot.next_update_id
            bot.next_update_id += 1
            bot.updates.append({"update_id": update_id, **update})
        self._wake_soon(bot)
        self._notify()
        return update_id

    def _absorb(self, bot: _Bot, kind: str, obj: dict) -> None:
        if kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
            chat = obj["chat"]
            bot.chats.setdefault(chat["id"], dict(chat))
            bot.messages[(chat["id"], obj["message_id"])] = copy.deepcopy(obj)
            used = bot.next_message_id.get(chat["id"], 1)
            bot.next_message_id[chat["id"]] = max(used, obj["message_id"] + 1)
        elif kind == "callback_query":
            bot.callback_queries[obj["id"]] = False
            if "message" in obj:
                chat = obj["message"]["chat"]
                bot.chats.setdefault(chat["id"], dict(chat))
        elif kind == "my_chat_member":
            chat = obj["chat"]
            bot.chats.setdefault(chat["id"], dict(chat))
            status = obj["new_chat_member"]["status"]
            if status in ("kicked", "left"):
                bot.blocked.add(chat["id"])
            elif status in ("member", "administrator"):
                bot.blocked.discard(chat["id"])

    # ------------------------------------------------------------------ files

    def _register_file(
        self,
        bot: _Bot,
        kind: str,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> _File:
        n = next(self._file_counter)
        if kind == "photo":
            ext = ".jpg"
        elif kind == "voice":
            ext = ".oga"
        elif kind == "sticker":
            ext = {"application/x-tgsticker": ".tgs", "video/webm": ".webm"}.get(mime_type or "", ".webp")
        else:
            ext = (file_name and ("." + file_name.rsplit(".", 1)[-1] if "." in file_name else "")) or (
                mimetypes.guess_extension(mime_type or "") or ""
            )
        f = _File(
            file_id=_random_id(FILE_ID_PREFIX[kind]),
            file_unique_id=_random_id("AgAD", 9),
            kind=kind,
            data=bytes(data),
            file_path=f"{FILE_DIR[kind]}/file_{n}{ext}",
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
        )
        bot.files[f.file_id] = f
        bot.files_by_path[f.file_path] = f
        return f

    # ------------------------------------------------------------------ HTTP

    @staticmethod
    def _answer(result: Any, description: str | None = None) -> web.Response:
        body: dict[str, Any] = {"ok": True, "result": result}
        if description:
            body["description"] = description
        return web.json_response(body)

    @staticmethod
    def _error(err: ApiError) -> web.Response:
        if err.code in NGINX_PAGES:
            phrase = f"{err.code} {NGINX_PAGES[err.code]}"
            html = f"<html>\r\n<head><title>{phrase}</title></head>\r\n<body>\r\n<center><h1>{phrase}</h1></center>\r\n"
            html += "<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
            return web.Response(status=err.code, text=html, content_type="text/html")
        body: dict[str, Any] = {"ok": False, "error_code": err.code, "description": err.description}
        if err.parameters:
            body["parameters"] = err.parameters
        return web.json_response(body, status=err.code)

    @staticmethod
    async def _read_params(request: web.Request) -> tuple[dict, dict]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, tuple[str | None, str | None, bytes]] = {}
        if request.can_read_body:
            ctype = request.content_type
            if ctype == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise bad_request("can't parse JSON object") from None
                if isinstance(body, dict):
                    params.update(body)
            elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = (value.filename, value.content_type, value.file.read())
                    else:
                        params[key] = value
        return params, files

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=599)  # never reaches the client: the socket is gone

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        method = request.match_info["method"]
        peer = request.transport.get_extra_info("peername") if request.transport is not None else None
        with self._lock:
            if peer:
                self._peers.add(tuple(peer))
            bot = self._bots.get(token)
            if bot is None or bot.revoked:
                return self._error(ApiError(401, "Unauthorized"))
            fault = self._take_fault(bot, method)
        try:
            params, files = await self._read_params(request)
        except ApiError as err:
            return self._error(err)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop and not fault.after:
                self._record_call(token, method, params, 0)
                return self._drop(request)
            if fault.status is not None:
                if fault.status == 429:
                    err = ApiError(
                        429,
                        fault.description or f"Too Many Requests: retry after {fault.retry_after}",
                        {"retry_after": fault.retry_after},
                    )
                else:
                    default = DEFAULT_DESCRIPTIONS.get(fault.status, "Internal Server Error")
                    err = ApiError(fault.status, fault.description or default)
                self._record_call(token, method, params, fault.status)
                return self._error(err)
        handler = self._methods.get(method.lower())
        if handler is None:
            return self._error(ApiError(404, "Not Found"))
        try:
            result = await handler(bot, params, files)
        except ApiError as err:
            self._record_call(token, method, params, err.code)
            return self._error(err)
        self._record_call(token, method, params, 200)
        if fault is not None and fault.drop:
            return self._drop(request)
        if fault is not None and fault.stall:
            await asyncio.sleep(fault.stall)  # the client may have given up and closed meanwhile
        if isinstance(result, tuple):
            return self._answer(*result)
        return self._answer(result)

    def _record_call(self, token: str, method: str, params: dict, status: int) -> None:
        with self._lock:
            self._calls.append(Call(token, method, dict(params), status))
        self._notify()

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        token, path = request.match_info["token"], request.match_info["path"]
        with self._lock:
            bot = self._bots.get(token)
            f = bot.files_by_path.get(path) if bot and not bot.revoked else None
            fault = self._take_fault(bot, "file", exact=True) if bot else None
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.drop:
                self._record_download(token, path, 0, 0)
                return self._drop(request)
            if fault.status is not None:
                self._record_download(token, path, fault.status, 0)
                if fault.status == 429:
                    retry = {"retry_after": fault.retry_after}
                    answer = self._error(ApiError(429, f"Too Many Requests: retry after {fault.retry_after}", retry))
                    answer.headers["Retry-After"] = str(fault.retry_after)
                    return answer
                return self._error(ApiError(fault.status, DEFAULT_DESCRIPTIONS.get(fault.status, "Error")))
        if f is None:
            self._record_download(token, path, 404, 0)
            return self._error(ApiError(404, "Not Found"))
        self._record_download(token, path, 200, len(f.data))
        return web.Response(body=f.data, content_type="application/octet-stream")

    def _record_download(self, token: str, path: str, status: int, size: int) -> None:
        with self._lock:
            self._downloads.append(Download(token, path, status, size))
        self._notify()

    # ------------------------------------------------------------------ parameters

    @staticmethod
    def _json(params: dict, name: str, what: str | None = None) -> Any:
        value = params.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {what or name} JSON object") from None
        return value

    @staticmethod
    def _int(params: dict, name: str, default: int | None = None) -> int | None:
        value = params.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    @staticmethod
    def _bool(params: dict, name: str) -> bool:
        value = params.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def _chat(self, bot: _Bot, params: dict, *, sending: bool = True) -> dict:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        chat = None
        if isinstance(raw, str) and raw.startswith("@"):
            chat = next((c for c in bot.chats.values() if c.get("username") == raw[1:]), None)
        else:
            try:
                chat = bot.chats.get(int(raw))
            except (TypeError, ValueError):
                chat = None
        if chat is None:
            raise bad_request("chat not found")
        if sending and chat["id"] in bot.blocked:
            if chat["type"] == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            if chat["type"] == "channel":
                raise ApiError(403, "Forbidden: bot is not a member of the channel chat")
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat['type']} chat")
        return chat

    def _reply_markup(self, params: dict) -> dict | None:
        markup = self._json(params, "reply_markup", "reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard", []):
            for button in row:
                if "text" not in button:
                    raise bad_request(
                        "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not (1 <= len(str(data).encode()) <= 64):
                    raise bad_request("BUTTON_DATA_INVALID")
        return markup

    def _reply_to(self, bot: _Bot, chat: dict, params: dict) -> dict | None:
        reply = self._json(params, "reply_parameters", "reply parameters")
        if reply is None and params.get("reply_to_message_id") not in (None, ""):
            reply = {
                "message_id": self._int(params, "reply_to_message_id"),
                "allow_sending_without_reply": self._bool(params, "allow_sending_without_reply"),
            }
        if not reply:
            return None
        target = bot.messages.get((chat["id"], int(reply["message_id"])))
        if target is None:
            if reply.get("allow_sending_without_reply"):
                return None
            raise bad_request("message to be replied not found")
        return {k: v for k, v in target.items() if k != "reply_to_message"}

    # ------------------------------------------------------------------ methods

    async def _get_me(self, bot: _Bot, params: dict, files: dict) -> dict:
        return {
            **bot.user,
            "can_join_groups": bot.can_join_groups,
            "can_read_all_group_messages": bot.can_read_all_group_messages,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    @staticmethod
    def _allowed(value: Any) -> frozenset[str] | None:
        if value is None:
            return None
        if not isinstance(value, list):
            raise bad_request("can't parse allowed updates JSON object")
        return frozenset(value) if value else DEFAULT_ALLOWED

    async def _get_updates(self, bot: _Bot, params: dict, files: dict) -> list[dict]:
        offset = self._int(params, "offset", 0)
        limit = min(max(self._int(params, "limit", 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = self._allowed(self._json(params, "allowed_updates", "allowed updates"))
        with self._lock:
            if bot.webhook is not None:
                raise ApiError(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
            if allowed is not None:
                bot.allowed_updates = allowed
            # A new request ends the one still waiting: that one is answered 409.
            bot.poll_seq += 1
            seq = bot.poll_seq
            if bot.updates_event is None:
                bot.updates_event = asyncio.Event()
            event = bot.updates_event
            if bot.polling:
                event.set()
            if offset > 0:
                bot.updates = [u for u in bot.updates if u["update_id"] >= offset]
            elif offset < 0:
                bot.updates = bot.updates[offset:]
        deadline = time.monotonic() + min(timeout, self.max_poll_timeout)
        await asyncio.sleep(0)  # lets the request it replaced see the 409 first
        while True:
            event.clear()
            with self._lock:
                if bot.poll_seq != seq:
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    )
                if bot.webhook is not None:
                    raise ApiError(409, "Conflict: terminated by setWebhook request")
                batch = copy.deepcopy(bot.updates[:limit])
                remaining = deadline - time.monotonic()
                if batch or remaining <= 0 or self._stopping or bot.revoked:
                    bot.polling = False
                    return batch
                bot.polling = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def _set_webhook(self, bot: _Bot, params: dict, files: dict) -> tuple[bool, str]:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        allowed = self._allowed(self._json(params, "allowed_updates", "allowed updates"))
        max_connections = self._int(params, "max_connections", 40)
        if secret is not None and secret != "" and not SECRET_TOKEN_RE.match(str(secret)):
            raise bad_request("secret token contains unallowed characters")
        if url and not re.match(r"^https?://[^/\s]+", url):
            raise bad_request("bad webhook: Failed to resolve host: Name or service not known")
        with self._lock:
            if self._bool(params, "drop_pending_updates"):
                bot.updates.clear()
            if allowed is not None:
                bot.allowed_updates = allowed
            if not url:
                was = bot.webhook is not None
                bot.webhook = None
                description = "Webhook was deleted" if was else "Webhook is already deleted"
            else:
                new = {"url": url, "secret_token": secret or None, "max_connections": max_connections}
                same = bot.webhook is not None and bot.webhook == new
                bot.webhook = new
                bot.webhook_error = None
                description = "Webhook is already set" if same else "Webhook was set"
                if bot.webhook_task is None or bot.webhook_task.done():
                    bot.webhook_task = asyncio.get_running_loop().create_task(self._webhook_sender(bot))
            self._wake(bot)
        return True, description

    async def _delete_webhook(self, bot: _Bot, params: dict, files: dict) -> tuple[bool, str]:
        with self._lock:
            if self._bool(params, "drop_pending_updates"):
                bot.updates.clear()
            was = bot.webhook is not None
            bot.webhook = None
            self._wake(bot)
        return True, "Webhook was deleted" if was else "Webhook is already deleted"

    async def _get_webhook_info(self, bot: _Bot, params: dict, files: dict) -> dict:
        with self._lock:
            info: dict[str, Any] = {
                "url": bot.webhook["url"] if bot.webhook else "",
                "has_custom_certificate": False,
                "pending_update_count": len(bot.updates),
            }
            if bot.webhook:
                info["max_connections"] = bot.webhook["max_connections"]
                info["ip_address"] = "127.0.0.1"
                if bot.allowed_updates != DEFAULT_ALLOWED:
                    info["allowed_updates"] = sorted(bot.allowed_updates)
                if bot.webhook_error:
                    info["last_error_date"], info["last_error_message"] = bot.webhook_error
            return info

    def _outgoing(self, bot: _Bot, chat: dict, content: dict, reply_to: dict | None, markup: dict | None) -> dict:
        msg: dict[str, Any] = {
            "message_id": self._next_message_id(bot, chat["id"]),
            "from": dict(bot.user),
            "chat": dict(chat),
            "date": _now(),
        }
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        msg.update(content)
        if markup and "inline_keyboard" in markup:
            msg["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}
        bot.messages[(chat["id"], msg["message_id"])] = copy.deepcopy(msg)
        return msg

    def _record_sent(self, bot: _Bot, method: str, params: dict, msg: dict, files: list[SentFile], markup) -> None:
        reply = msg.get("reply_to_message")
        self._sent.append(
            Sent(
                token=bot.token,
                method=method,
                chat_id=msg["chat"]["id"],
                message_id=msg["message_id"],
                text=msg.get("text"),
                caption=msg.get("caption"),
                parse_mode=params.get("parse_mode"),
                files=files,
                reply_markup=markup,
                reply_to_message_id=reply["message_id"] if reply else None,
                params=dict(params),
                message=copy.deepcopy(msg),
            )
        )

    async def _send_message(self, bot: _Bot, params: dict, files: dict) -> dict:
        with self._lock:
            chat = self._chat(bot, params)
            text = params.get("text")
            if text is None or str(text).strip() == "":
                raise bad_request("message text is empty")
            if len(str(text)) > 4096:
                raise bad_request("message is too long")
            markup = self._reply_markup(params)
            reply_to = self._reply_to(bot, chat, params)
            content: dict[str, Any] = {"text": str(text)}
            entities = self._json(params, "entities")
            if entities:
                content["entities"] = entities
            msg = self._outgoing(bot, chat, content, reply_to, markup)
            self._record_sent(bot, "sendMessage", params, msg, [], markup)
        self._notify()
        return msg

    async def _input_file(self, bot: _Bot, kind: str, name: str, params: dict, files: dict) -> tuple:
        """Returns (source, bytes, file_name, mime_type, existing _File or None)."""
        value = params.get(name)
        upload = files.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            upload = files.get(value[len("attach://") :])
            if upload is None:
                raise bad_request(f"can't find {value} in the request")
        if upload is not None:
            file_name, mime_type, data = upload
            if not data:
                raise bad_request("file must be non-empty")
            return "upload", data, file_name, mime_type, None
        if not value:
            raise bad_request(f"there is no {name} in the request")
        value = str(value)
        if value.startswith(("http://", "https://")):
            assert self._session is not None
            try:
                async with self._session.get(value) as resp:
                    if resp.status != 200:
                        raise bad_request("failed to get HTTP URL content")
                    data = await resp.read()
                    mime_type = resp.content_type
            except aiohttp.ClientError:
                raise bad_request("failed to get HTTP URL content") from None
            return "url", data, value.rsplit("/", 1)[-1] or None, mime_type, None
        with self._lock:
            existing = bot.files.get(value)
        if existing is None:
            raise bad_request("wrong file identifier/HTTP URL specified")
        if (existing.kind == "photo") != (kind == "photo"):
            raise bad_request("type of file mismatch")
        return "file_id", existing.data, existing.file_name, existing.mime_type, existing

    def _caption(self, params: dict) -> str | None:
        caption = params.get("caption")
        if caption is not None and len(str(caption)) > 1024:
            raise bad_request("message caption is too long")
        return str(caption) if caption not in (None, "") else None

    async def _send_photo(self, bot: _Bot, params: dict, files: dict) -> dict:
        with self._lock:
            chat = self._chat(bot, params)
            self._reply_markup(params)
        source, data, file_name, mime_type, existing = await self._input_file(bot, "photo", "photo", params, files)
        with self._lock:
            chat = self._chat(bot, params)
            caption = self._caption(params)
            markup = self._reply_markup(params)
            reply_to = self._reply_to(bot, chat, params)
            if existing is not None:
                sizes = copy.deepcopy(bot.photo_sets.get(existing.file_id) or [self._photo_size(existing)])
            else:
                if _image_size(data) is None and Image is not None:
                    raise bad_request("IMAGE_PROCESS_FAILED")
                sizes = self._photo_sizes(bot, data, None, None)
            content: dict[str, Any] = {"photo": sizes}
            if caption:
                content["caption"] = caption
            msg = self._outgoing(bot, chat, content, reply_to, markup)
            sent_file = SentFile("photo", file_name, mime_type, data, source, sizes[-1]["file_id"])
            self._record_sent(bot, "sendPhoto", params, msg, [sent_file], markup)
        self._notify()
        return msg

    async def _send_document(self, bot: _Bot, params: dict, files: dict) -> dict:
        with self._lock:
            chat = self._chat(bot, params)
            self._reply_markup(params)
        source, data, file_name, mime_type, existing = await self._input_file(
            bot, "document", "document", params, files
        )
        with self._lock:
            chat = self._chat(bot, params)
            caption = self._caption(params)
            markup = self._reply_markup(params)
            reply_to = self._reply_to(bot, chat, params)
            if existing is None:
                mime_type = mime_type or mimetypes.guess_type(file_name or "")[0] or "application/octet-stream"
                existing = self._register_file(bot, "document", data, file_name=file_name, mime_type=mime_type)
            document: dict[str, Any] = {
                "file_id": existing.file_id,
                "file_unique_id": existing.file_unique_id,
                "file_size": len(existing.data),
            }
            if existing.file_name:
                document["file_name"] = existing.file_name
            if existing.mime_type:
                document["mime_type"] = existing.mime_type
            content: dict[str, Any] = {"document": document}
            if caption:
                content["caption"] = caption
            msg = self._outgoing(bot, chat, content, reply_to, markup)
            sent_file = SentFile("document", file_name, mime_type, data, source, existing.file_id)
            self._record_sent(bot, "sendDocument", params, msg, [sent_file], markup)
        self._notify()
        return msg

    async def _send_chat_action(self, bot: _Bot, params: dict, files: dict) -> bool:
        with self._lock:
            self._chat(bot, params)
            if not params.get("action"):
                raise bad_request("action is empty")
        return True

    async def _get_chat(self, bot: _Bot, params: dict, files: dict) -> dict:
        with self._lock:
            chat = self._chat(bot, params, sending=False)
            return {
                **chat,
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                },
            }

    async def _get_file(self, bot: _Bot, params: dict, files: dict) -> dict:
        file_id = params.get("file_id")
        if not file_id:
            raise bad_request("file_id not specified")
        with self._lock:
            f = bot.files.get(str(file_id))
        if f is None:
            raise bad_request("invalid file_id")
        if len(f.data) > GET_FILE_LIMIT:
            raise bad_request("file is too big")
        answer: dict[str, Any] = {"file_id": f.file_id, "file_unique_id": f.file_unique_id, "file_path": f.file_path}
        if f.report_size:
            answer["file_size"] = len(f.data)
        return answer

    async def _answer_callback_query(self, bot: _Bot, params: dict, files: dict) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        with self._lock:
            if bot.callback_queries.get(query_id, True):
                raise bad_request("query is too old and response timeout expired or query ID is invalid")
            bot.callback_queries[query_id] = True
        return True

    def _editable(self, bot: _Bot, params: dict) -> tuple[dict, dict]:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._chat(bot, params)
        message_id = self._int(params, "message_id")
        msg = bot.messages.get((chat["id"], message_id)) if message_id else None
        if msg is None:
            raise bad_request("message to edit not found")
        if msg["from"]["id"] != bot.bot_id:
            raise bad_request("message can't be edited")
        return chat, msg

    def _finish_edit(self, bot: _Bot, method: str, params: dict, msg: dict, new: dict, markup) -> dict:
        if new == msg:
            raise bad_request(
                "message is not modified: specified new message content and reply markup are exactly the same "
                "as a current content and reply markup of the message"
            )
        new["edit_date"] = _now()
        bot.messages[(msg["chat"]["id"], msg["message_id"])] = copy.deepcopy(new)
        self._record_sent(bot, method, params, new, [], markup)
        return new

    async def _edit_message_text(self, bot: _Bot, params: dict, files: dict) -> dict:
        with self._lock:
            _chat, msg = self._editable(bot, params)
            text = params.get("text")
            if text is None or str(text).strip() == "":
                raise bad_request("message text is empty")
            if "text" not in msg:
                raise bad_request("there is no text in the message to edit")
            markup = self._reply_markup(params)
            new = {k: v for k, v in msg.items() if k not in ("edit_date", "reply_markup", "entities")}
            new["text"] = str(text)
            if markup and "inline_keyboard" in markup:
                new["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}
            cmp = {k: v for k, v in msg.items() if k not in ("edit_date", "entities")}
            if new == cmp:
                raise bad_request(
                    "message is not modified: specified new message content and reply markup are exactly the "
                    "same as a current content and reply markup of the message"
                )
            result = self._finish_edit(bot, "editMessageText", params, msg, new, markup)
        self._notify()
        return result

    async def _edit_message_reply_markup(self, bot: _Bot, params: dict, files: dict) -> dict:
        with self._lock:
            _chat, msg = self._editable(bot, params)
            markup = self._reply_markup(params)
            new = {k: v for k, v in msg.items() if k not in ("edit_date", "reply_markup")}
            if markup and markup.get("inline_keyboard"):
                new["reply_markup"] = {"inline_keyboard": markup["inline_keyboard"]}
            cmp = {k: v for k, v in msg.items() if k != "edit_date"}
            if new == cmp:
                raise bad_request(
                    "message is not modified: specified new message content and reply markup are exactly the "
                    "same as a current content and reply markup of the message"
                )
            result = self._finish_edit(bot, "editMessageReplyMarkup", params, msg, new, markup)
        self._notify()
        return result

    # ------------------------------------------------------------------ webhook delivery

    async def _webhook_sender(self, bot: _Bot) -> None:
        """Posts the bot's queued updates to its webhook, oldest first, one at a time."""
        assert self._session is not None
        if bot.webhook_event is None:
            bot.webhook_event = asyncio.Event()
        event = bot.webhook_event
        attempts = 0
        while True:
            event.clear()
            with self._lock:
                hook = dict(bot.webhook) if bot.webhook else None
                if hook is None or self._stopping:
                    return
                update = copy.deepcopy(bot.updates[0]) if bot.updates else None
            if update is None:
                await event.wait()
                continue
            headers = {"Content-Type": "application/json"}
            if hook["secret_token"]:
                headers["X-Telegram-Bot-Api-Secret-Token"] = hook["secret_token"]
            status: int | None = None
            error: str | None = None
            reply: Any = None
            try:
                async with self._session.post(hook["url"], data=json.dumps(update), headers=headers) as resp:
                    status = resp.status
                    if 200 <= status <= 299:
                        if resp.content_type == "application/json":
                            with contextlib.suppress(ValueError):
                                reply = await resp.json()
                    else:
                        error = f"Wrong response from the webhook: {status} {resp.reason}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = (
                    "Connection refused" if isinstance(exc, aiohttp.ClientConnectorError) else "Read timeout expired"
                )
            with self._lock:
                self._deliveries.append(
                    WebhookDelivery(bot.token, hook["url"], update["update_id"], hook["secret_token"], status, error)
                )
                if error is None or attempts + 1 >= self.webhook_max_attempts:
                    # Delivered, or given up on: either way it leaves the queue.
                    if bot.updates and bot.updates[0]["update_id"] == update["update_id"]:
                        bot.updates.pop(0)
                    attempts = 0
                else:
                    attempts += 1
                if error is not None:
                    bot.webhook_error = (_now(), error)
            self._notify()
            if isinstance(reply, dict) and isinstance(reply.get("method"), str):
                await self._webhook_reply(bot, reply)
            if error is not None and attempts:
                await asyncio.sleep(self.webhook_retry_delay)

    async def _webhook_reply(self, bot: _Bot, reply: dict) -> None:
        # "Executing requests when receiving updates": the webhook's answer is itself a method call.
        params = {k: v for k, v in reply.items() if k != "method"}
        handler = self._methods.get(reply["method"].lower())
        status = 404
        if handler is not None and reply["method"].lower() not in ("getupdates", "getfile"):
            try:
                await handler(bot, params, {})
                status = 200
            except ApiError as err:
                status = err.code
        self._record_call(bot.token, reply["method"], params, status)


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    """A started FakeTelegram, stopped after the test."""
    with FakeTelegram() as fake:
        yield fake
