"""A customer's photo or document from VK: downloaded from the address VK gave, never past the limit.

``inbound.attachments`` describes each file with its ``url`` (a photo's ``orig_photo`` or its
largest size, a doc's ``url``) and, for a doc, its ``size``. ``fetch_file`` streams that URL
with requests and stops as soon as the body passes ``max_bytes`` (a declared size or
Content-Length over it is refused before reading). Only ``http``/``https`` addresses are
fetched, and a redirect may lead only to another one (requests refuses any other scheme),
at most ``MAX_REDIRECTS`` times.

Failures are ``FetchError``s: retryable when VK's file servers are unreachable, slow, 5xx or
429 (with its ``Retry-After``); permanent when the file is gone or refused (404, 403, 410: a
doc link that expired, a deleted file), the address is not one we fetch, or a redirect leads
nowhere we may go. The text is our own words, never the URL (a doc's URL is a signed link).
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from django.utils.translation import gettext as _

from helpdesk.conversations.adapters import FetchedFile, FetchError
from helpdesk.conversations.attachments import human_size
from helpdesk.conversations.models import Channel

from .client import TIMEOUT

CHUNK = 64 * 1024
MAX_REDIRECTS = 3
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def _too_large(max_bytes: int) -> FetchError:
    words = _("The file is larger than %(limit)s.") % {"limit": human_size(max_bytes)}
    return FetchError(words, permanent=True, too_large=True)


def _answered(status: int) -> str:
    return _("VK's file server answered HTTP %(status)s.") % {"status": status}


def _retry_after(response: requests.Response) -> float | None:
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return None


def _name(url: str) -> str:
    """The last part of the URL's path: VK's name for the file (``photo.jpg``, a doc's title)."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])[:255]


def download(url: str, max_bytes: int) -> tuple[bytes, str]:
    """The body at ``url`` (at most ``max_bytes``) and the address it finally came from."""
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(_("VK gave no web address for this file."), permanent=True)
    buffer = io.BytesIO()
    with requests.Session() as http:
        http.max_redirects = MAX_REDIRECTS
        try:
            with http.get(url, stream=True, timeout=TIMEOUT, allow_redirects=True) as response:
                status = response.status_code
                if status in RETRYABLE_STATUSES:
                    wait = _retry_after(response) if status == 429 else None
                    raise FetchError(_answered(status), permanent=False, retry_after=wait)
                if status != 200:
                    raise FetchError(_answered(status), permanent=True)
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise _too_large(max_bytes)
                for chunk in response.iter_content(CHUNK):
                    buffer.write(chunk)
                    if buffer.tell() > max_bytes:
                        raise _too_large(max_bytes)
                final = response.url
        except (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL, requests.exceptions.MissingSchema):
            words = _("VK's file address led somewhere files are not fetched from.")
            raise FetchError(words, permanent=True) from None
        except requests.TooManyRedirects:
            raise FetchError(_("VK's file address redirected too many times."), permanent=True) from None
        except requests.RequestException as exc:  # unreachable, timed out, cut off
            words = _("VK's file server could not be reached (%(what)s).") % {"what": type(exc).__name__}
            raise FetchError(words, permanent=False) from None
    return buffer.getvalue(), final


def fetch_file(channel: Channel, source: dict[str, Any], *, max_bytes: int) -> FetchedFile:
    url = source.get("url")
    if not isinstance(url, str) or not url:
        raise FetchError(_("VK gave no address for this file."), permanent=True)
    size = source.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size > max_bytes:
        raise _too_large(max_bytes)  # VK said so in the event: not even asked for
    data, final = download(url, max_bytes)
    return FetchedFile(data=data, name=_name(final))
