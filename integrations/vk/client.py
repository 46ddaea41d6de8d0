"""A vk-api ``VkApiGroup`` (for a community's token) pointed at ``settings.VK_API_URL`` (the
real API, a proxy or the tests' fake server).

vk-api 11 builds every method's address itself, ``https://api.vk.ru/method/<name>`` fixed in
``VkApi.method``, and takes no base URL. What it does take is the ``requests.Session`` it posts
through (``VkApi(session=...)``), so that session sends those requests to VK_API_URL instead.
The Bots Long Poll server's address comes from VK in ``groups.getLongPollServer`` and is left
alone. ``open_session`` keeps one per token and thread for the worker's sends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import requests
import vk_api
from django.conf import settings
from jconfig import MemoryConfig

VK_API_VERSION = "5.199"
LIBRARY_METHOD_URL = "https://api.vk.ru/method/"
TIMEOUT = 15  # seconds; requests has none by default
CACHED_SESSIONS = 32
_local = threading.local()
UPLOAD_TIMEOUT = 60  # an upload of a file of up to ATTACHMENT_MAX_BYTES to VK's upload server


class VkApiSession(requests.Session):
    """Sends vk-api's method calls to ``base_url`` (``.../method``) rather than api.vk.ru."""

    def __init__(self, base_url: str):
        super().__init__()
        self.base_url = base_url.rstrip("/") + "/"

    def request(self, method, url, *args, **kwargs):
        if isinstance(url, str) and url.startswith(LIBRARY_METHOD_URL):
            url = self.base_url + url[len(LIBRARY_METHOD_URL) :]
        kwargs.setdefault("timeout", TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def vk_session(token: str) -> vk_api.VkApiGroup:
    # MemoryConfig: vk-api would otherwise read and write vk_config.v2.json in the working directory.
    return vk_api.VkApiGroup(
        token=token, api_version=VK_API_VERSION, config=MemoryConfig, session=VkApiSession(settings.VK_API_URL)
    )


def open_session(token: str) -> vk_api.VkApiGroup:
    """This thread's kept ``VkApiGroup`` for ``token``: consecutive calls reuse its HTTP
    connection (and vk-api spaces them by its 50 ms, VK's 20 calls a second per community).
    Per thread, since a ``requests.Session`` is not shared safely; the least recently used
    beyond ``CACHED_SESSIONS`` are closed."""
    kept: OrderedDict[tuple[str, str], vk_api.VkApiGroup] | None = getattr(_local, "kept", None)
    if kept is None:
        kept = _local.kept = OrderedDict()
    key = (token, settings.VK_API_URL)
    vk = kept.pop(key, None) or vk_session(token)
    kept[key] = vk
    while len(kept) > CACHED_SESSIONS:
        _, old = kept.popitem(last=False)
        old.http.close()
    return vk


class UploadSession(requests.Session):
    """vk-api's ``VkUpload`` posts files to the ``upload_url`` VK returns (on VK's upload servers,
    or the tests' fake) through a plain session with no timeout; this one has one."""

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", UPLOAD_TIMEOUT)
        return super().request(method, url, *args, **kwargs)
