"""Files in conversations: what a file is, whether it may be kept, and links to read it.

- **What it is** comes from its content (its first bytes, by ``filetype``'s magic numbers),
  never from its name or the type the sender claims: a ``.jpg`` that is a program is a program.
  Text has no magic number; a file of valid UTF-8 with no NUL byte is text (``text/csv`` when
  its name says so, otherwise ``text/plain``).
- **Limits** (settings): ``ATTACHMENT_MAX_BYTES`` per file, ``ATTACHMENTS_PER_MESSAGE`` per
  message, ``ATTACHMENT_TYPES`` the types allowed (``image/*`` wildcards). ``check`` raises an
  ``ActionError`` whose message is meant for the sender, in their language.
- **Links** are signed and expire (``ATTACHMENT_LINK_SECONDS``). An employee's link is also
  checked against the access gate when it is used (``access.visible_conversations``); a
  visitor's link names the contact it was made for. A link names no storage path: nothing
  about a file can be guessed, and storage (local or S3) is never exposed.

The rows are written by the conversation actions only (``actions.attachments``).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from urllib.parse import quote

import filetype
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.translation import gettext as _

from helpdesk.errors import ActionError

from .models import Attachment

# Shown inline in the thread and the widget; any other type is only ever a download.
INLINE_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
SNIFF_BYTES = 8192  # enough for every magic number filetype knows, and to judge text
LINK_SALT = "smartchat.attachments.link"


def sniff(head: bytes, name: str = "") -> str:
    """The MIME type of a file from its first bytes ("" if unknown). ``name`` only tells csv
    from plain text, both of which are text by their content."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    if not head:
        return ""
    if b"\x00" in head:
        return ""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still text.
        if exc.start < len(head) - 3:
            return ""
    return "text/csv" if name.lower().endswith(".csv") else "text/plain"


def allowed_type(content_type: str) -> bool:
    patterns = settings.ATTACHMENT_TYPES
    return bool(content_type) and any(fnmatch.fnmatchcase(content_type, pattern) for pattern in patterns)


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def check_size(size: int | None, name: str) -> None:
    """Refuse a file over ``ATTACHMENT_MAX_BYTES`` before reading it (when its size is known)."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if size is not None and size > limit:
        raise ActionError(
            _("“%(name)s” is too large: files can be at most %(limit)s.") % {"name": name, "limit": human_size(limit)},
            code="file_too_large",
        )


def check_type(content_type: str, name: str) -> None:
    if not allowed_type(content_type):
        raise ActionError(
            _("“%(name)s” can't be sent: files of this type are not accepted.") % {"name": name},
            code="file_type_not_allowed",
        )


def check_count(count: int) -> None:
    if count > settings.ATTACHMENTS_PER_MESSAGE:
        raise ActionError(
            _("A message can carry at most %(limit)s files.") % {"limit": settings.ATTACHMENTS_PER_MESSAGE},
            code="too_many_files",
        )


def clean_name(name: str) -> str:
    """A file name fit to show and to offer as a download: no path, no control characters."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().strip(".")
    return name[:200] or "file"


# --- links ----------------------------------------------------------------------------------


def link(attachment: Attachment, *, visitor_contact_id: int | None = None) -> str:
    """A signed, expiring URL of the file: for employees (the access gate is asked when it is
    used), or for the visitor whose conversation it is (``visitor_contact_id``)."""
    token = signing.dumps({"a": attachment.pk, "v": visitor_contact_id}, salt=LINK_SALT, compress=False)
    return reverse("attachment-file", args=[token, quote(attachment.name or "file", safe="")])


@dataclass(frozen=True)
class LinkClaim:
    attachment_id: int
    visitor_contact_id: int | None  # None: an employee's link


class LinkError(Exception):
    """A link that can't be used: ``expired`` (it was ours, its time is over) or forged/malformed."""

    def __init__(self, *, expired: bool):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def check_link(token: str) -> LinkClaim:
    """What a link's token says; ``LinkError`` (telling an expired link from a forged one) if unusable."""
    try:
        claim = signing.loads(token, salt=LINK_SALT, max_age=settings.ATTACHMENT_LINK_SECONDS)
    except signing.SignatureExpired:
        raise LinkError(expired=True) from None
    except signing.BadSignature:
        raise LinkError(expired=False) from None
    if not isinstance(claim, dict):
        raise LinkError(expired=False)
    attachment_id, visitor = claim.get("a"), claim.get("v")
    if not isinstance(attachment_id, int) or isinstance(attachment_id, bool):
        raise LinkError(expired=False)
    if visitor is not None and (not isinstance(visitor, int) or isinstance(visitor, bool)):
        raise LinkError(expired=False)
    return LinkClaim(attachment_id, visitor)


def read_link(token: str) -> LinkClaim | None:
    """What a link's token says, or None if it is forged, malformed or expired."""
    try:
        return check_link(token)
    except LinkError:
        return None
