"""The web process's start-up objects, set aside from the garbage collector (``gc.freeze``).

A web process holds a few hundred thousand objects from start-up alone (Django, the apps,
their modules, the URL patterns) that live as long as the process. CPython's oldest
generation scans all of them on every full collection, which runs every few seconds while
sockets are busy, with the event loop stopped: with 300 inbox sockets a pause of 143 ms at
the median (398 ms at worst), 40 ms (125 ms) once they are frozen (bench/README.md, "One
event to 300 sockets: the tail").
Frozen, they are never scanned; what the process allocates later (sockets, requests) is
collected as before, so nothing made after start-up can leak through this.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Import what the first requests would, collect once, and freeze the rest; how many were frozen."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 -- imports every view module now, not on the first request
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
