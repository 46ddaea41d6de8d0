"""The one place that reads the environment: typed, with defaults, loud on bad values."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import TypeVar

from limits import parse_many

T = TypeVar("T")


class ConfigError(RuntimeError):
    """A setting in the environment has a value Smartchat cannot use."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _read(name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return parse(raw.strip())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}={raw!r} is not valid: {exc}") from exc


def string(name: str, default: str = "") -> str:
    return _read(name, default, str)


def boolean(name: str, default: bool = False) -> bool:
    def parse(raw: str) -> bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError("expected one of 1/0, true/false, yes/no, on/off")

    return _read(name, default, parse)


def integer(name: str, default: int, *, minimum: int | None = None) -> int:
    def parse(raw: str) -> int:
        value = int(raw)
        if minimum is not None and value < minimum:
            raise ValueError(f"must be at least {minimum}")
        return value

    return _read(name, default, parse)


def choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of a few words (lower-cased), e.g. LOG_FORMAT=json|text."""

    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return raw.lower()

    return _read(name, default, parse)


def string_list(name: str, default: list[str]) -> list[str]:
    return _read(name, default, lambda raw: [part.strip() for part in raw.split(",") if part.strip()])


def fraction(name: str, default: float) -> float:
    """A number from 0 to 1 (a ratio such as a similarity threshold)."""

    def parse(raw: str) -> float:
        value = float(raw)
        if not 0 <= value <= 1:
            raise ValueError("must be between 0 and 1")
        return value

    return _read(name, default, parse)


def networks(name: str) -> list[str]:
    """Comma-separated IP addresses and CIDR networks (``10.0.0.5, 172.16.0.0/12``); empty: none.

    Each is checked here, so a typo stops start-up instead of silently trusting nothing.
    """

    def parse(raw: str) -> list[str]:
        found = []
        for part in (part.strip() for part in raw.split(",")):
            if not part:
                continue
            try:
                found.append(str(ipaddress.ip_network(part) if "/" in part else ipaddress.ip_address(part)))
            except ValueError as exc:
                raise ValueError(f"{exc} (write IP addresses or networks such as 10.0.0.0/8)") from None
        return found

    return _read(name, [], parse)


def rate_limit(name: str, default: str) -> str:
    """A rate in the ``limits`` notation: "30/minute", "5/second; 100/hour"; "off" for none."""

    def parse(raw: str) -> str:
        if raw.lower() == "off":
            return "off"
        items = parse_many(raw)  # ValueError on anything it cannot read
        if any(item.amount < 1 for item in items):
            raise ValueError("every amount must be at least 1 (use off for no limit)")
        return raw

    return _read(name, default, parse)


def fernet_keys(name: str) -> list[str]:
    """Comma-separated Fernet keys, newest first (``Fernet.generate_key()``); empty: none.

    Each is checked here, so a mistyped key stops start-up instead of failing on the first save.
    """
    from cryptography.fernet import Fernet

    def parse(raw: str) -> list[str]:
        keys = [part.strip() for part in raw.split(",") if part.strip()]
        for position, key in enumerate(keys, start=1):
            try:
                Fernet(key)
            except ValueError:
                raise ValueError(
                    f"key {position} is not a Fernet key (32 url-safe base64-encoded bytes; make one with "
                    '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
                ) from None
        return keys

    return _read(name, [], parse)
