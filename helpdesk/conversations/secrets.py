"""Channel credentials, encrypted at rest with Fernet (the ``cryptography`` library).

The keys come from ``settings.CHANNEL_SECRET_KEYS``, newest first: the first encrypts, every
one decrypts (``MultiFernet``), so a key is rotated by putting a new one in front, running
``manage.py rotate_channel_secrets`` (re-encrypts every channel with the first key) and then
dropping the old one. With no keys set, one key is derived from ``SECRET_KEY`` by HKDF, so the
embedded default works out of the box; the price is that whoever has SECRET_KEY can read the
credentials, and changing SECRET_KEY makes them unreadable (list the old derived key first:
``derived_key(old_secret_key)``).
"""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

MASK = "••••"


class SecretsUnreadable(Exception):
    """No configured key opens a channel's stored credentials (a key was dropped too early)."""


def derived_key(secret_key: str) -> str:
    """The Fernet key used when CHANNEL_SECRET_KEYS is empty: HKDF-SHA256 of SECRET_KEY."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"smartchat", info=b"channel-secrets")
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode())).decode()


def _fernet() -> MultiFernet:
    keys = settings.CHANNEL_SECRET_KEYS or [derived_key(settings.SECRET_KEY)]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(values: dict[str, str]) -> str:
    """The stored form of a channel's secrets; empty when there are none."""
    if not values:
        return ""
    return _fernet().encrypt(json.dumps(values, sort_keys=True).encode()).decode()


def decrypt(token: str) -> dict[str, str]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except InvalidToken:
        raise SecretsUnreadable("no key in CHANNEL_SECRET_KEYS opens these channel credentials") from None


def rotate(token: str) -> str:
    """The same secrets, encrypted with the newest key."""
    if not token:
        return ""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretsUnreadable("no key in CHANNEL_SECRET_KEYS opens these channel credentials") from None


def mask(value: str) -> str:
    """How a saved secret is shown: its last four characters, and only when it is long enough
    that they give nothing away."""
    if not value:
        return ""
    return MASK + value[-4:] if len(value) >= 16 else MASK
