"""Check the browser libraries in static/vendor/ against scripts/assets.sha256 (exit 1 if not)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def problems() -> list[str]:
    found = []
    for line in (ROOT / "scripts" / "assets.sha256").read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = ROOT / name
        if not path.is_file():
            found.append(f"{name}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            found.append(f"{name}: its SHA-256 is not the one in scripts/assets.sha256")
    return found


if __name__ == "__main__":
    wrong = problems()
    if wrong and "--quiet" not in sys.argv:
        print("smartchat: static/vendor/ is not as pinned:\n  " + "\n  ".join(wrong), file=sys.stderr)
    sys.exit(1 if wrong else 0)
