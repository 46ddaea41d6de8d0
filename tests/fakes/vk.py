"""A fake VK API (version 5.199) on 127.0.0.1, for tests that drive the real vk-api library.

It speaks VK's wire protocol as documented at https://dev.vk.com/ru/reference: the method API
(``POST {api_url}/{method}`` with form fields, ``access_token`` and ``v``; answers
``{"response": ...}`` or ``{"error": {"error_code", "error_msg", "request_params"}}`` with HTTP 200),
the Bots Long Poll server (``{server}?act=a_check&key=&ts=&wait=``), the upload servers, and
Callback API delivery to a URL of yours.

Pointing vk-api 11.10.1 at it
-----------------------------
vk-api has no setting for the API address: ``VkApi.method()`` posts to the hard-coded
``f"https://api.vk.ru/method/{method}"`` through ``self.http``, the ``requests.Session`` given as
the ``session=`` constructor argument. So the supported way is a session that rewrites that
prefix (it also adds the timeout vk-api never passes)::

    import requests
    import vk_api

    LIBRARY_METHOD_URL = "https://api.vk.ru/method/"  # hard-coded in vk_api.VkApi.method()

    class VkApiURLSession(requests.Session):
        def __init__(self, api_url, timeout=30):
            super().__init__()
            self.api_url, self.timeout = api_url.rstrip("/") + "/", timeout

        def request(self, method, url, *args, **kwargs):
            if isinstance(url, str) and url.startswith(LIBRARY_METHOD_URL):
                url = self.api_url + url[len(LIBRARY_METHOD_URL):]
            kwargs.setdefault("timeout", self.timeout)
            return super().request(method, url, *args, **kwargs)

    vk = vk_api.VkApi(token=token, api_version="5.199", session=VkApiURLSession(settings.VK_API_URL))

Nothing else needs redirecting: ``VkBotLongPoll`` and ``VkUpload`` make their own plain sessions
but only call the URLs the API hands out (``server`` from ``groups.getLongPollServer``,
``upload_url`` from the ``*UploadServer`` methods), which the fake points at itself.
Pass ``api_version="5.199"`` (vk-api's default is 5.92). ``VkApiGroup`` (a ``VkApi`` with a 50 ms
instead of 340 ms pause between calls) is the class for community tokens.

Using the fake
--------------
::

    with FakeVK() as fake:                       # or the ``vk_fake`` pytest fixture
        fake.add_group(1, "tok", name="Shop")
        fake.add_user(7, "Ivan", "Petrov")
        vk = fake.vk_session("tok")              # the real library, pointed at the fake
        fake.push_event(1, fake.message_new(1, from_id=7, text="hi", photos=[b"..."]))
        ...
        assert fake.sent[0].text == "hello"

See tests/fakes/README.md for the full list.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import secrets
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp import web

API_VERSION = "5.199"
LIBRARY_METHOD_URL = "https://api.vk.ru/method/"  # hard-coded in vk_api.VkApi.method() (11.10.1)

ERROR_MESSAGES = {
    1: "Unknown error occurred",
    3: "Unknown method passed",
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    8: "Invalid request: v (version) is required",
    9: "Flood control",
    10: "Internal server error",
    15: "Access denied",
    27: "Group authorization failed: method is unavailable with group auth.",
    100: "One of the parameters specified was missing or invalid",
    113: "Invalid user id",
    121: "Invalid hash",
    901: "Can't send messages for users without permission",
}

CLIENT_INFO = {
    "button_actions": [
        "text",
        "vkpay",
        "open_app",
        "location",
        "open_link",
        "callback",
        "intent_subscribe",
        "intent_unsubscribe",
    ],
    "keyboard": True,
    "inline_keyboard": True,
    "carousel": True,
    "lang_id": 0,
}

# random_id is checked for uniqueness within the dialogue over the last hour, but over no more than
# the last 100 messages (dev.vk.com, messages.send).
RANDOM_ID_WINDOW_SECONDS = 3600
RANDOM_ID_WINDOW_MESSAGES = 100
MAX_WAIT = 90  # the Bots Long Poll maximum for ``wait``

# Bots Long Poll / Callback API ``doc.type``: 1 text, 2 archive, 3 gif, 4 image, 5 audio, 6 video, 7 e-book, 8 other.
_DOC_TYPES = {
    "txt": 1,
    "pdf": 1,
    "doc": 1,
    "docx": 1,
    "odt": 1,
    "rtf": 1,
    "zip": 2,
    "rar": 2,
    "7z": 2,
    "gz": 2,
    "gif": 3,
    "jpg": 4,
    "jpeg": 4,
    "png": 4,
    "webp": 4,
    "mp3": 5,
    "ogg": 5,
    "mp4": 6,
    "avi": 6,
    "epub": 7,
    "fb2": 7,
}
_CONTENT_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "pdf": "application/pdf",
    "txt": "text/plain; charset=utf-8",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
}
# Photo ``sizes`` as VK lists them: type, then the longer side in pixels.
_PHOTO_SIZES = (("s", 75), ("m", 130), ("x", 604), ("y", 807))
# A sticker's ``images`` (and ``images_with_background``): square PNGs of these sides.
_STICKER_SIDES = (64, 128, 256, 352, 512)


def tiny_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (220, 60, 60)) -> bytes:
    """A real PNG image of one colour (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


class VkApiURLSession(requests.Session):
    """A requests session that sends vk-api's hard-coded method URL to ``api_url`` (see the module docs)."""

    def __init__(self, api_url: str, timeout: float = 30):
        super().__init__()
        self.api_url = api_url.rstrip("/") + "/"
        self.timeout = timeout

    def request(self, method, url, *args, **kwargs):
        if isinstance(url, str) and url.startswith(LIBRARY_METHOD_URL):
            url = self.api_url + url[len(LIBRARY_METHOD_URL) :]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


@dataclass
class Group:
    group_id: int
    tokens: set[str]
    name: str
    screen_name: str


@dataclass
class User:
    id: int
    first_name: str
    last_name: str


@dataclass
class Media:
    """A stored photo or document: what a test can check an upload or an attachment against."""

    kind: str  # "photo" | "doc" | "audio_message" | "sticker"
    owner_id: int
    media_id: int
    access_key: str
    filename: str
    data: bytes
    content_type: str
    url: str

    @property
    def attachment(self) -> str:
        """The ``attachment`` string for messages.send: ``photo-1_5`` (no access key for one's own media)."""
        return f"{self.kind}{self.owner_id}_{self.media_id}"


@dataclass
class SentMessage:
    group_id: int
    peer_id: int
    message_id: int
    text: str
    attachment: str
    random_id: int
    date: int
    params: dict[str, str]
    media: list[Media | None] = field(default_factory=list)


@dataclass
class ApiCall:
    method: str
    params: dict[str, str]  # without access_token
    group_id: int | None  # None when the token was refused
    error_code: int | None = None


@dataclass
class CallbackDelivery:
    group_id: int
    event_id: str | None  # None for the confirmation request
    type: str
    attempt: int  # 0 for the first try; the X-Retry-Counter of a retry
    status: int | None  # None when the connection failed
    body: str
    payload: dict
    headers: dict[str, str]


@dataclass
class _LongPoll:
    base_ts: int
    events: list[dict] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)

    @property
    def ts(self) -> int:
        return self.base_ts + len(self.events)


@dataclass
class _Callback:
    url: str
    secret: str | None
    code: str
    confirmed: bool = False
    queue: asyncio.Queue | None = None
    task: asyncio.Task | None = None


@dataclass
class _Fault:
    error_code: int | None
    error_msg: str | None
    http_status: int | None
    drop: bool
    count: int
    location: str | None = None  # "file" only: answer 302 to this address


@dataclass
class Download:
    """A request for a photo's or doc's bytes at the URL an attachment carries, and the answer."""

    path: str
    status: int  # 0 when the connection was dropped
    size: int  # bytes in the answer's body


class FakeVK:
    """The fake VK server. Start it with ``with FakeVK() as fake:`` or the ``vk_fake`` fixture.

    ``callback_retry_delay`` and ``callback_attempts`` bound the Callback API retries (VK retries an
    event that was not answered ``ok``); ``max_wait`` caps a long poll's ``wait`` (VK's cap is 90).
    """

    def __init__(
        self,
        *,
        callback_retry_delay: float = 0.1,
        callback_attempts: int = 5,
        callback_timeout: float = 5.0,
        max_wait: float = 30.0,
    ):
        self.callback_retry_delay = callback_retry_delay
        self.callback_attempts = callback_attempts
        self.callback_timeout = callback_timeout
        self.max_wait = max_wait
        self.url = ""
        self.api_url = ""
        self._lock = threading.RLock()
        self._groups: dict[int, Group] = {}
        self._tokens: dict[str, int] = {}
        self._users: dict[int, User] = {}
        self._denied: set[tuple[int, int]] = set()  # (group_id, user_id) that did not allow messages
        self._longpoll: dict[int, _LongPoll] = {}
        self._callbacks: dict[int, _Callback] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._lp_faults: list[tuple[int | None, int, int | None]] = []  # (group_id, failed, ts)
        self._sent: list[SentMessage] = []
        self._calls: list[ApiCall] = []
        self._deliveries: list[CallbackDelivery] = []
        self._downloads: list[Download] = []
        self._media: dict[tuple[str, int, int], Media] = {}
        self._files: dict[str, Media] = {}
        self._uploads: dict[str, tuple[str, int, int | None]] = {}  # upload id -> (kind, group_id, peer_id)
        self._uploaded: dict[str, tuple[str, bytes, int]] = {}  # opaque file id -> (filename, data, group_id)
        self._hash_key = secrets.token_bytes(16)
        self._ids = itertools.count(456239017)
        self._conversation_ids: dict[tuple[int, int], int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._changed: asyncio.Event | None = None
        self._closing = False

    # ----------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> FakeVK:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.url}/method"
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve(sock))
            except BaseException as exc:  # surfaced by start()
                errors.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="fake-vk", daemon=True)
        self._thread.start()
        if not started.wait(10) or errors:
            raise RuntimeError(f"the fake VK server did not start: {errors}")

    async def _serve(self, sock: socket.socket) -> None:
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/method/{method}", self._handle_method)
        app.router.add_get("/whp/{group_id}", self._handle_longpoll)
        app.router.add_post("/upload/{kind}/{upload_id}", self._handle_upload)
        app.router.add_get("/files/{token}/{name}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.callback_timeout))

    def stop(self) -> None:
        if not self._loop or not self._thread:
            return
        self._closing = True

        async def shutdown() -> None:
            self._notify()
            for cb in list(self._callbacks.values()):
                if cb.task:
                    cb.task.cancel()
            if self._client:
                await self._client.close()
            if self._runner:
                await self._runner.cleanup()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = self._thread = None

    def _run(self, coro, timeout: float):
        if threading.current_thread() is self._thread:
            raise RuntimeError("call this from the test's thread, not from the fake's event loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _notify(self) -> None:
        old, self._changed = self._changed, asyncio.Event()
        old.set()

    def _wake(self) -> None:
        if self._loop and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._notify)

    # ----------------------------------------------------------------------------- set-up

    def add_group(self, group_id: int, access_token: str, name: str = "", screen_name: str = "") -> Group:
        with self._lock:
            group = self._groups.get(group_id)
            if group is None:
                group = Group(group_id, set(), name or f"Community {group_id}", screen_name or f"club{group_id}")
                self._groups[group_id] = group
                self._longpoll[group_id] = _LongPoll(base_ts=secrets.randbelow(9000) + 1000)
            group.tokens.add(access_token)
            self._tokens[access_token] = group_id
            return group

    def revoke(self, access_token: str) -> None:
        """The token stops working: every call with it gets error 5."""
        with self._lock:
            group_id = self._tokens.pop(access_token, None)
            if group_id is not None:
                self._groups[group_id].tokens.discard(access_token)

    def add_user(self, user_id: int, first_name: str, last_name: str = "") -> User:
        with self._lock:
            self._users[user_id] = User(user_id, first_name, last_name)
            return self._users[user_id]

    def deny_messages(self, group_id: int, user_id: int, denied: bool = True) -> None:
        """Whether messages.send to this user gets error 901 (also set by pushing message_deny/message_allow)."""
        with self._lock:
            (self._denied.add if denied else self._denied.discard)((group_id, user_id))

    # ----------------------------------------------------------------------------- fault injection

    def fail_next(
        self,
        method: str,
        error_code: int | None = 6,
        count: int = 1,
        *,
        error_msg: str | None = None,
        http_status: int | None = None,
        drop: bool = False,
        location: str | None = None,
    ) -> None:
        """The next ``count`` calls of ``method`` fail: with VK error ``error_code`` (HTTP 200, VK's message),
        or with a bare HTTP ``http_status`` page, or by closing the connection without an answer (``drop``).
        ``method`` is an API method name, ``"*"`` for any, ``"longpoll"`` for a_check, ``"upload"`` for uploads,
        ``"file"`` for downloads of attachments' bytes (never matched by ``"*"``; ``location=`` answers a
        302 redirect there; ``http_status=429`` carries ``Retry-After: 1``)."""
        fault = _Fault(error_code, error_msg, http_status, drop, count, location)
        with self._lock:
            self._faults.setdefault(method, []).append(fault)

    def fail_longpoll(self, failed: int, group_id: int | None = None, ts: int | None = None) -> None:
        """The next a_check (of ``group_id``, or of any group) answers ``{"failed": failed}`` once.

        1: ``{"failed": 1, "ts": <ts>}`` (history lost; continue from that ts, by default the current one).
        2: the key expired; every key issued so far keeps answering ``{"failed": 2}`` until
           groups.getLongPollServer is called again.
        3: information lost; the keys expire as with 2, and the client must take a new key and ts."""
        if failed not in (1, 2, 3):
            raise ValueError("failed is 1, 2 or 3")
        with self._lock:
            self._lp_faults.append((group_id, failed, ts))

    def _take_fault(self, name: str, *, exact: bool = False) -> _Fault | None:
        with self._lock:
            for key in (name,) if exact else (name, "*"):
                queue = self._faults.get(key)
                if queue:
                    fault = queue[0]
                    fault.count -= 1
                    if fault.count <= 0:
                        queue.pop(0)
                    return fault
        return None

    # ----------------------------------------------------------------------------- what happened

    @property
    def sent(self) -> list[SentMessage]:
        """Every message messages.send really posted (a repeated random_id posts nothing)."""
        with self._lock:
            return list(self._sent)

    @property
    def calls(self) -> list[ApiCall]:
        with self._lock:
            return list(self._calls)

    def calls_of(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    @property
    def deliveries(self) -> list[CallbackDelivery]:
        """Every Callback API request the fake made (confirmations included), with its answer."""
        with self._lock:
            return list(self._deliveries)

    @property
    def downloads(self) -> list[Download]:
        """Every request for an attachment's bytes (``/files/...``), in order."""
        with self._lock:
            return list(self._downloads)

    def media(self, attachment: str) -> Media | None:
        """The stored photo or doc for an attachment string such as ``photo-1_456239017`` or ``doc7_5_key``."""
        kind = "photo" if attachment.startswith("photo") else "doc" if attachment.startswith("doc") else None
        if kind is None:
            return None
        parts = attachment[len(kind) :].split("_")
        try:
            key = (kind, int(parts[0]), int(parts[1]))
        except (IndexError, ValueError):
            return None
        with self._lock:
            return self._media.get(key)

    def longpoll_ts(self, group_id: int) -> int:
        with self._lock:
            return self._longpoll[group_id].ts

    def longpoll_server(self, group_id: int) -> str:
        return f"{self.url}/whp/{group_id}"

    # ----------------------------------------------------------------------------- the real library

    def vk_session(self, access_token: str, *, api_version: str = API_VERSION, group: bool = True):
        """A real ``vk_api.VkApiGroup`` (or ``VkApi``) pointed at this fake through ``VkApiURLSession``."""
        import vk_api

        cls = vk_api.VkApiGroup if group else vk_api.VkApi
        return cls(token=access_token, api_version=api_version, session=VkApiURLSession(self.api_url, timeout=10))

    # ----------------------------------------------------------------------------- events

    @staticmethod
    def new_event_id() -> str:
        return secrets.token_hex(20)

    def _event(self, group_id: int, type_: str, obj: dict) -> dict:
        return {"group_id": group_id, "type": type_, "event_id": self.new_event_id(), "v": API_VERSION, "object": obj}

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _conversation_message_id(self, group_id: int, peer_id: int) -> int:
        with self._lock:
            key = (group_id, peer_id)
            self._conversation_ids[key] = self._conversation_ids.get(key, 0) + 1
            return self._conversation_ids[key]

    def _store(self, kind: str, owner_id: int, filename: str, data: bytes) -> Media:
        media_id = self._next_id()
        token = secrets.token_urlsafe(12)
        ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        media = Media(
            kind=kind,
            owner_id=owner_id,
            media_id=media_id,
            access_key=secrets.token_hex(9),
            filename=filename,
            data=bytes(data),
            content_type=_CONTENT_TYPES.get(ext, "application/octet-stream"),
            url=f"{self.url}/files/{token}/{filename}",
        )
        with self._lock:
            self._media[(kind, owner_id, media_id)] = media
            self._files[token] = media
        return media

    def _photo_object(self, media: Media, date: int) -> dict:
        sizes = []
        for letter, side in _PHOTO_SIZES:
            sizes.append({"height": side * 3 // 4, "width": side, "type": letter, "url": f"{media.url}?size={letter}"})
        return {
            "album_id": -3,
            "date": date,
            "id": media.media_id,
            "owner_id": media.owner_id,
            "access_key": media.access_key,
            "sizes": sizes,
            "orig_photo": {"height": 605, "width": 807, "type": "base", "url": media.url},
            "text": "",
            "web_view_token": secrets.token_hex(10),
            "has_tags": False,
        }

    def _doc_object(self, media: Media, date: int) -> dict:
        ext = media.filename.rsplit(".", 1)[-1].lower() if "." in media.filename else ""
        return {
            "id": media.media_id,
            "owner_id": media.owner_id,
            "title": media.filename,
            "size": len(media.data),
            "ext": ext,
            "date": date,
            "type": _DOC_TYPES.get(ext, 8),
            "url": media.url,
            "access_key": media.access_key,
        }

    def _audio_message_object(self, owner_id: int, ogg: bytes | None, mp3: bytes | None) -> dict:
        """A voice message: ``link_ogg`` and ``link_mp3`` (either may be left out), served here."""
        obj: dict[str, Any] = {
            "duration": 3,
            "id": self._next_id(),
            "owner_id": owner_id,
            "access_key": secrets.token_hex(9),
            "waveform": [0, 3, 9, 17, 21, 14, 6, 1] * 16,
        }
        if ogg is not None:
            obj["link_ogg"] = self._store("audio_message", owner_id, "voice.ogg", ogg).url
        if mp3 is not None:
            obj["link_mp3"] = self._store("audio_message", owner_id, "voice.mp3", mp3).url
        return obj

    def _sticker_object(self, png: bytes) -> dict:
        """A sticker: ``images`` and ``images_with_background``, square PNGs from 64 to 512 px; the
        largest serves ``png``, the smaller ones real PNGs of their size."""
        sticker_id = self._next_id()

        def images(background: bool) -> list[dict]:
            out = []
            for side in _STICKER_SIDES:
                data = png if side == _STICKER_SIDES[-1] and not background else tiny_png(side, side)
                name = f"1-{sticker_id}-{side}{'b' if background else ''}.png"
                out.append({"url": self._store("sticker", 0, name, data).url, "width": side, "height": side})
            return out

        return {
            "product_id": 1,
            "sticker_id": sticker_id,
            "images": images(False),
            "images_with_background": images(True),
            "is_allowed": True,
        }

    def message_new(
        self,
        group_id: int,
        from_id: int,
        text: str = "",
        *,
        peer_id: int | None = None,
        photos: list[bytes | tuple[str, bytes]] = (),
        docs: list[tuple[str, bytes]] = (),
        voices: list[tuple[bytes | None, bytes | None]] = (),
        stickers: list[bytes] = (),
        date: int | None = None,
        payload: str | None = None,
        client_info: dict | None = None,
    ) -> dict:
        """A ``message_new`` event as VK 5.199 sends it: ``object.message`` and ``object.client_info``.

        ``photos`` are images (bytes, or (filename, bytes)), ``docs`` are (title, bytes); the fake serves
        their bytes at the URLs in the attachments (``photo.sizes[].url``, ``photo.orig_photo.url``, ``doc.url``).
        ``voices`` are voice messages, (ogg bytes, mp3 bytes), served at ``audio_message.link_ogg`` and
        ``link_mp3`` (``None`` leaves that link out); ``stickers`` are PNGs, served at the largest of the
        sticker's ``images``."""
        peer_id = from_id if peer_id is None else peer_id
        date = int(time.time()) if date is None else date
        attachments = []
        for photo in photos:
            filename, data = photo if isinstance(photo, tuple) else ("photo.png", photo)
            attachments.append(
                {"type": "photo", "photo": self._photo_object(self._store("photo", from_id, filename, data), date)}
            )
        for title, data in docs:
            attachments.append({"type": "doc", "doc": self._doc_object(self._store("doc", from_id, title, data), date)})
        for ogg, mp3 in voices:
            voice = self._audio_message_object(from_id, ogg, mp3)
            attachments.append({"type": "audio_message", "audio_message": voice})
        for png in stickers:
            attachments.append({"type": "sticker", "sticker": self._sticker_object(png)})
        message = {
            "date": date,
            "from_id": from_id,
            "id": self._next_id(),
            "out": 0,
            "version": self._next_id(),
            "attachments": attachments,
            "conversation_message_id": self._conversation_message_id(group_id, peer_id),
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "peer_id": peer_id,
            "random_id": 0,
            "text": text,
        }
        if payload is not None:
            message["payload"] = payload
        return self._event(group_id, "message_new", {"message": message, "client_info": client_info or CLIENT_INFO})

    def message_reply(self, group_id: int, peer_id: int, text: str, *, admin_author_id: int | None = None) -> dict:
        """``message_reply``: the community's own outgoing message (object is the message itself)."""
        message = {
            "date": int(time.time()),
            "from_id": -group_id,
            "id": self._next_id(),
            "out": 1,
            "version": self._next_id(),
            "attachments": [],
            "conversation_message_id": self._conversation_message_id(group_id, peer_id),
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "peer_id": peer_id,
            "random_id": 0,
            "text": text,
        }
        if admin_author_id is not None:
            message["admin_author_id"] = admin_author_id
        return self._event(group_id, "message_reply", message)

    def message_event(
        self,
        group_id: int,
        user_id: int,
        payload: dict | None = None,
        *,
        peer_id: int | None = None,
        conversation_message_id: int = 1,
    ) -> dict:
        """``message_event``: a press of a callback button."""
        obj = {
            "user_id": user_id,
            "peer_id": user_id if peer_id is None else peer_id,
            "event_id": secrets.token_hex(6),
            "payload": payload or {},
            "conversation_message_id": conversation_message_id,
        }
        return self._event(group_id, "message_event", obj)

    def message_allow(self, group_id: int, user_id: int, key: str = "") -> dict:
        return self._event(group_id, "message_allow", {"user_id": user_id, "key": key})

    def message_deny(self, group_id: int, user_id: int) -> dict:
        return self._event(group_id, "message_deny", {"user_id": user_id})

    def push_event(self, group_id: int, event: dict) -> dict:
        """Queue an event for the group's long poll and, when set and confirmed, its Callback API server."""
        event = dict(event)
        event["group_id"] = group_id
        event.setdefault("event_id", self.new_event_id())
        event.setdefault("v", API_VERSION)
        with self._lock:
            if group_id not in self._groups:
                raise KeyError(f"no community {group_id}: add_group() first")
            if event.get("type") in ("message_allow", "message_deny"):
                self.deny_messages(group_id, event["object"]["user_id"], event["type"] == "message_deny")
            self._longpoll[group_id].events.append(event)
            callback = self._callbacks.get(group_id)
        self._wake()
        if callback and callback.confirmed and callback.queue is not None:
            self._loop.call_soon_threadsafe(callback.queue.put_nowait, event)
        return event

    # ----------------------------------------------------------------------------- Callback API

    def set_callback(
        self,
        group_id: int,
        url: str,
        secret: str | None,
        confirmation_code: str,
        *,
        confirmation_secret: bool = True,
        timeout: float = 10,
    ) -> bool:
        """Add the server ``url`` as the community's Callback API server and confirm it, as VK does on
        "Confirm": POST ``{"type": "confirmation", "group_id": ...}`` (with ``"secret"`` when there is one
        and ``confirmation_secret``), expecting exactly ``confirmation_code`` as the body. Returns whether
        it was confirmed; events pushed afterwards are delivered only to a confirmed server."""
        with self._lock:
            if group_id not in self._groups:
                raise KeyError(f"no community {group_id}: add_group() first")
            old = self._callbacks.get(group_id)
            callback = _Callback(url, secret, confirmation_code)
            self._callbacks[group_id] = callback
        if old and old.task:
            self._loop.call_soon_threadsafe(old.task.cancel)
        return self._run(self._confirm(group_id, callback, confirmation_secret), timeout)

    async def _confirm(self, group_id: int, callback: _Callback, with_secret: bool) -> bool:
        payload: dict[str, Any] = {"type": "confirmation", "group_id": group_id}
        if callback.secret and with_secret:
            payload["secret"] = callback.secret
        status, body = await self._post_callback(group_id, callback, payload, attempt=0)
        callback.confirmed = status == 200 and body == callback.code
        if callback.confirmed:
            callback.queue = asyncio.Queue()
            callback.task = asyncio.get_running_loop().create_task(self._deliver_forever(group_id, callback))
        return callback.confirmed

    async def _post_callback(self, group_id: int, callback: _Callback, payload: dict, attempt: int):
        headers = {"Content-Type": "application/json"}
        if attempt:
            headers["X-Retry-Counter"] = str(attempt)
        status, body = None, ""
        try:
            data = json.dumps(payload, ensure_ascii=False)
            async with self._client.post(callback.url, data=data, headers=headers) as r:
                status, body = r.status, await r.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            body = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._deliveries.append(
                CallbackDelivery(
                    group_id, payload.get("event_id"), payload["type"], attempt, status, body, payload, headers
                )
            )
        return status, body

    async def _deliver_forever(self, group_id: int, callback: _Callback) -> None:
        # One event at a time per server, so the order is kept; a failed event is retried before the next.
        while not self._closing:
            event = await callback.queue.get()
            payload = dict(event)
            if callback.secret:
                payload["secret"] = callback.secret
            for attempt in range(self.callback_attempts):
                status, body = await self._post_callback(group_id, callback, payload, attempt)
                if status == 200 and body == "ok":
                    break
                await asyncio.sleep(self.callback_retry_delay)
            callback.queue.task_done()

    def wait_for_deliveries(self, timeout: float = 10) -> None:
        """Wait until every pushed event has been delivered (answered ok, or given up after the retries)."""

        async def drain() -> None:
            for callback in list(self._callbacks.values()):
                if callback.queue is not None:
                    await callback.queue.join()

        self._run(asyncio.wait_for(drain(), timeout), timeout + 1)

    # ----------------------------------------------------------------------------- HTTP: the method API

    @staticmethod
    def _json(data: Any) -> web.Response:
        return web.Response(text=json.dumps(data, ensure_ascii=False), content_type="application/json")

    async def _fault_response(self, request: web.Request, fault: _Fault) -> web.StreamResponse | None:
        if fault.drop:
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing is written: the client sees the connection drop
        if fault.http_status:
            return web.Response(
                status=fault.http_status,
                text=f"<html><body><h1>{fault.http_status}</h1></body></html>",
                content_type="text/html",
                headers={"Retry-After": "1"} if fault.http_status == 429 else None,
            )
        return None

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params: dict[str, str] = dict(request.query)
        if request.method == "POST":
            params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
        token = params.pop("access_token", None)
        visible = dict(params)

        def error(code: int, msg: str | None = None, group_id: int | None = None) -> web.Response:
            with self._lock:
                self._calls.append(ApiCall(method, visible, group_id, code))
            request_params = [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}]
            request_params += [{"key": k, "value": v} for k, v in visible.items()]
            text = msg or ERROR_MESSAGES.get(code, ERROR_MESSAGES[1])
            return self._json({"error": {"error_code": code, "error_msg": text, "request_params": request_params}})

        if not token:
            return error(5, "User authorization failed: no access_token passed.")
        with self._lock:
            group_id = self._tokens.get(token)
        if group_id is None:
            return error(5)
        if not params.get("v"):
            return error(8, group_id=group_id)
        fault = self._take_fault(method)
        if fault:
            response = await self._fault_response(request, fault)
            if response is not None:
                with self._lock:
                    self._calls.append(ApiCall(method, visible, group_id, fault.http_status))
                return response
            return error(fault.error_code, fault.error_msg, group_id)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return error(3, group_id=group_id)
        result = handler(group_id, params)
        if isinstance(result, tuple):  # (error_code, message)
            return error(result[0], result[1], group_id)
        with self._lock:
            self._calls.append(ApiCall(method, visible, group_id))
        return self._json({"response": result})

    def _m_groups_getById(self, group_id: int, params: dict) -> Any:
        wanted = params.get("group_ids") or params.get("group_id") or str(group_id)
        groups = []
        with self._lock:
            for raw in wanted.split(","):
                raw = raw.strip()
                group = self._groups.get(int(raw.lstrip("-"))) if raw.lstrip("-").isdigit() else None
                group = group or next((g for g in self._groups.values() if g.screen_name == raw), None)
                if group is None:
                    return (100, f"One of the parameters specified was missing or invalid: group_ids {raw} is invalid")
                groups.append(group)
        items = [
            {
                "id": g.group_id,
                "name": g.name,
                "screen_name": g.screen_name,
                "is_closed": 0,
                "type": "group",
                "is_admin": 0,
                "is_member": 0,
                "is_advertiser": 0,
                "photo_50": f"{self.url}/files/group/{g.group_id}_50.png",
                "photo_100": f"{self.url}/files/group/{g.group_id}_100.png",
                "photo_200": f"{self.url}/files/group/{g.group_id}_200.png",
            }
            for g in groups
        ]
        return {"groups": items, "profiles": []}

    def _m_groups_getLongPollServer(self, group_id: int, params: dict) -> Any:
        asked = params.get("group_id", "")
        if not asked.isdigit():
            return (100, "One of the parameters specified was missing or invalid: group_id is undefined")
        if int(asked) != group_id:
            return (15, "Access denied: no access to this group")
        key = secrets.token_hex(20)
        with self._lock:
            lp = self._longpoll[group_id]
            lp.keys.add(key)
            return {"key": key, "server": self.longpoll_server(group_id), "ts": str(lp.ts)}

    def _m_users_get(self, group_id: int, params: dict) -> Any:
        ids = [i.strip() for i in params.get("user_ids", params.get("user_id", "")).split(",") if i.strip()]
        if not ids:
            return (100, "One of the parameters specified was missing or invalid: user_ids is undefined")
        result = []
        with self._lock:
            for raw in ids:
                if not raw.isdigit():
                    return (113, None)
                user = self._users.get(int(raw))
                if user is None:
                    result.append({"id": int(raw), "first_name": "DELETED", "last_name": "", "deactivated": "deleted"})
                else:
                    result.append(
                        {
                            "id": user.id,
                            "first_name": user.first_name,
                            "last_name": user.last_name,
                            "can_access_closed": True,
                            "is_closed": False,
                        }
                    )
        return result

    def _m_messages_send(self, group_id: int, params: dict) -> Any:
        peer = params.get("peer_id") or params.get("user_id")
        if not peer or not peer.lstrip("-").isdigit():
            return (100, "One of the parameters specified was missing or invalid: peer_id is undefined")
        peer_id = int(peer)
        raw_random = params.get("random_id", "")
        if not raw_random.lstrip("-").isdigit():
            return (100, "One of the parameters specified was missing or invalid: random_id is a required parameter")
        random_id = int(raw_random)
        text = params.get("message", "")
        attachment = params.get("attachment", "")
        if not text and not attachment:
            return (100, "One of the parameters specified was missing or invalid: message is empty or invalid")
        now = int(time.time())
        with self._lock:
            if (group_id, peer_id) in self._denied:
                return (901, None)
            if random_id:
                recent = [m for m in self._sent if m.group_id == group_id and m.peer_id == peer_id]
                for m in recent[-RANDOM_ID_WINDOW_MESSAGES:]:
                    if m.random_id == random_id and now - m.date < RANDOM_ID_WINDOW_SECONDS:
                        return m.message_id  # VK's answer to a repeat: the original message, not posted again
            message_id = next(self._ids)
            media = [self.media(a.strip()) for a in attachment.split(",") if a.strip()]
            self._sent.append(
                SentMessage(group_id, peer_id, message_id, text, attachment, random_id, now, dict(params), media)
            )
            self._conversation_message_id(group_id, peer_id)
        return message_id

    def _upload_server(self, kind: str, group_id: int, params: dict) -> str:
        upload_id = secrets.token_urlsafe(16)
        peer = params.get("peer_id", "")
        with self._lock:
            self._uploads[upload_id] = (kind, group_id, int(peer) if peer.lstrip("-").isdigit() else None)
        return f"{self.url}/upload/{kind}/{upload_id}"

    def _m_photos_getMessagesUploadServer(self, group_id: int, params: dict) -> Any:
        return {
            "album_id": -3,
            "upload_url": self._upload_server("photo", group_id, params),
            "user_id": 0,
            "group_id": group_id,
        }

    def _upload_hash(self, *parts: Any) -> str:
        return hmac.new(self._hash_key, "|".join(map(str, parts)).encode(), hashlib.md5).hexdigest()

    def _m_photos_saveMessagesPhoto(self, group_id: int, params: dict) -> Any:
        photo, server, given_hash = params.get("photo", ""), params.get("server", ""), params.get("hash", "")
        if not photo or photo == "[]":
            return (100, "One of the parameters specified was missing or invalid: photo is undefined")
        if not hmac.compare_digest(self._upload_hash(server, photo), given_hash):
            return (121, None)
        try:
            file_id = json.loads(photo)[0]["photo"]
        except (ValueError, KeyError, IndexError, TypeError):
            return (100, "One of the parameters specified was missing or invalid: photo is invalid")
        with self._lock:
            uploaded = self._uploaded.get(file_id)
        if uploaded is None or uploaded[2] != group_id:
            return (100, "One of the parameters specified was missing or invalid: photo is invalid")
        media = self._store("photo", -group_id, uploaded[0], uploaded[1])
        return [self._photo_object(media, int(time.time()))]

    def _m_docs_getMessagesUploadServer(self, group_id: int, params: dict) -> Any:
        if not params.get("peer_id"):
            return (100, "One of the parameters specified was missing or invalid: peer_id is undefined")
        return {"upload_url": self._upload_server("doc", group_id, params)}

    def _m_docs_getUploadServer(self, group_id: int, params: dict) -> Any:
        return (27, None)

    def _m_docs_getWallUploadServer(self, group_id: int, params: dict) -> Any:
        return (27, None)

    def _m_docs_save(self, group_id: int, params: dict) -> Any:
        file_id = params.get("file", "")
        with self._lock:
            uploaded = self._uploaded.get(file_id)
        if uploaded is None or uploaded[2] != group_id:
            return (100, "One of the parameters specified was missing or invalid: file is invalid")
        filename = uploaded[0]
        media = self._store("doc", -group_id, filename, uploaded[1])
        doc = self._doc_object(media, int(time.time()))
        if params.get("title"):
            doc["title"] = params["title"]
        return {"type": "doc", "doc": doc}

    # ----------------------------------------------------------------------------- HTTP: uploads and files

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        fault = self._take_fault("upload")
        if fault:
            response = await self._fault_response(request, fault)
            if response is not None:
                return response
        with self._lock:
            target = self._uploads.get(request.match_info["upload_id"])
        if target is None or target[0] != request.match_info["kind"]:
            return web.Response(status=404, text="Not Found")
        kind, group_id, _peer = target
        form = await request.post()
        # VK takes ``photo`` (and vk-api's ``file0``) for photos, ``file`` for documents.
        names = ("photo", "file", "file0") if kind == "photo" else ("file", "file0")
        upload = next((form[n] for n in names if n in form and hasattr(form[n], "file")), None)
        server = 800000 + secrets.randbelow(100000)
        if upload is None:
            if kind == "photo":
                photo = "[]"
                return self._json({"server": server, "photo": photo, "hash": self._upload_hash(server, photo)})
            return self._json({"error": "no_file", "error_descr": "file not uploaded"})
        data = upload.file.read()
        file_id = secrets.token_hex(16)
        with self._lock:
            self._uploaded[file_id] = (upload.filename or f"file.{kind}", data, group_id)
        if kind == "photo":
            photo = json.dumps([{"photo": file_id, "sizes": [], "kid": secrets.token_hex(16), "debug": "xsxmxx"}])
            return self._json({"server": server, "photo": photo, "hash": self._upload_hash(server, photo)})
        return self._json({"file": file_id})

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        fault = self._take_fault("file", exact=True)
        if fault:
            if fault.location:
                self._record_download(path, 302, 0)
                return web.Response(status=302, headers={"Location": fault.location})
            self._record_download(path, fault.http_status or 0, 0)
            response = await self._fault_response(request, fault)
            if response is not None:
                return response
        with self._lock:
            media = self._files.get(request.match_info["token"])
        if media is None:
            if request.match_info["token"] == "group":
                return web.Response(body=tiny_png(), content_type="image/png")
            self._record_download(path, 404, 0)
            return web.Response(status=404, text="Not Found")
        self._record_download(path, 200, len(media.data))
        return web.Response(body=media.data, headers={"Content-Type": media.content_type})

    def _record_download(self, path: str, status: int, size: int) -> None:
        with self._lock:
            self._downloads.append(Download(path, status, size))

    # ----------------------------------------------------------------------------- HTTP: Bots Long Poll

    def _check_longpoll(self, group_id: int, key: str, ts_raw: str) -> dict | None:
        with self._lock:
            lp = self._longpoll.get(group_id)
            if lp is None or key not in lp.keys:
                return {"failed": 2}
            for i, (gid, failed, ts) in enumerate(self._lp_faults):
                if gid in (None, group_id):
                    del self._lp_faults[i]
                    if failed == 1:
                        return {"failed": 1, "ts": str(lp.ts if ts is None else ts)}
                    lp.keys.clear()
                    return {"failed": failed}
            try:
                ts = int(ts_raw)
            except ValueError:
                return {"failed": 1, "ts": str(lp.ts)}
            if ts < lp.base_ts or ts > lp.ts:
                return {"failed": 1, "ts": str(lp.ts)}
            if ts < lp.ts:
                return {"ts": str(lp.ts), "updates": lp.events[ts - lp.base_ts :]}
            return None

    async def _handle_longpoll(self, request: web.Request) -> web.StreamResponse:
        fault = self._take_fault("longpoll")
        if fault:
            response = await self._fault_response(request, fault)
            if response is not None:
                return response
        q = request.query
        if q.get("act") != "a_check":
            return self._json({"failed": 2})
        try:
            group_id = int(request.match_info["group_id"])
            wait = min(max(float(q.get("wait", "25")), 0), MAX_WAIT, self.max_wait)
        except ValueError:
            return self._json({"failed": 2})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            changed = self._changed
            answer = self._check_longpoll(group_id, q.get("key", ""), q.get("ts", ""))
            if answer is not None:
                return self._json(answer)
            remaining = deadline - loop.time()
            if remaining <= 0 or self._closing:
                return self._json({"ts": str(self.longpoll_ts(group_id)), "updates": []})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)


@pytest.fixture
def vk_fake():
    """A running FakeVK, stopped after the test."""
    with FakeVK() as fake:
        yield fake
