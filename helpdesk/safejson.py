"""JSON from strangers: parsed with a depth limit, every failure one ``ValueError``.

The standard parser recurses once per nesting level, so about a thousand ``[`` raise
``RecursionError`` (not ``ValueError``) and escape the handlers that expect bad JSON. Deep
documents that do parse are refused too: nothing we accept is nested more than a few levels.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

MAX_DEPTH = 32


class BadJSON(ValueError):
    """The input is not JSON we accept: not JSON at all, not UTF-8, or nested too deeply."""


def loads(raw: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw``; raise ``BadJSON`` for anything that is not JSON nested at most ``max_depth``."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise BadJSON("JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BadJSON(f"not valid JSON: {exc}") from None
    if depth(value) > max_depth:
        raise BadJSON("JSON nested too deeply")
    return value


def depth(value: Any) -> int:
    """How deeply lists and objects nest in ``value`` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest


def read_body(request: HttpRequest, max_bytes: int) -> bytes | None:
    """A stranger's request body, or None if it is longer than ``max_bytes`` (read at most one byte past).

    ``request.body`` would read a body of any length under ``DATA_UPLOAD_MAX_MEMORY_SIZE`` and
    raise ``RequestDataTooBig`` (a 400 with a traceback in the log) above it: a webhook that
    must answer every body, and an endpoint that answers 413, read it with this instead.
    """
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.strip().isdigit() and int(declared) > max_bytes:
        return None  # the declared length alone: nothing is read
    data = request.read(max_bytes + 1)
    return None if len(data) > max_bytes else data
