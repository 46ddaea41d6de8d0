"""The web process freezes its start-up objects (smartchat/heap.py): full collections skip them.

Each case boots a fresh interpreter on the ASGI module, as uvicorn does, and counts what a
full collection would still scan.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import gc, json, time\n"
    "import smartchat.asgi\n"
    "started = time.perf_counter(); gc.collect(); took = time.perf_counter() - started\n"
    "print(json.dumps({'frozen': gc.get_freeze_count(), 'scanned': len(gc.get_objects()), 'ms': took * 1000}))\n"
)


def boot(**env: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "smartchat.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_start_up_objects_are_frozen_so_a_full_collection_scans_few():
    heap = boot()
    # Django, the apps and every view module: well over 50,000 objects, none scanned again.
    assert heap["frozen"] > 50_000
    assert heap["scanned"] < heap["frozen"] // 20


def test_the_freeze_can_be_turned_off():
    heap = boot(GC_FREEZE_AT_START="false")
    assert heap["frozen"] == 0
    assert heap["scanned"] > 50_000
