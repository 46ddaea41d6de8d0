"""How uvicorn serves our websockets: the flags every place that starts the web process passes.

The Procfile, the image's CMD and docker-compose.yml spell them out in their own syntax;
the bench and the tests' servers take them from here; tests/test_deploy.py checks they agree.
No Django here: the bench imports it before any settings exist.

- ``--ws websockets-sansio``: uvicorn's default today, named so that a change of default (its
  older ``websockets`` implementation holds about 250 KiB per socket with compression on)
  cannot come in silently.
- ``--ws-per-message-deflate false`` unless ``WEB_WS_DEFLATE`` says otherwise: permessage-deflate
  keeps a zlib compressor and decompressor per socket for its whole life (context takeover),
  about 48 KiB of server memory per open socket, to shrink frames that are small JSON
  (docs/operations.md, "Websocket compression").
"""

from __future__ import annotations

import os
from collections.abc import Mapping

WS_IMPLEMENTATION = "websockets-sansio"
DEFLATE_ENV = "WEB_WS_DEFLATE"
DEFLATE_DEFAULT = False

# What uvicorn's command line takes for a boolean (click's BOOL), so the env var means the same
# to the Procfile (a shell passes it to the flag as it is) and to the bench and tests (read here).
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def ws_deflate(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether websockets offer permessage-deflate: ``WEB_WS_DEFLATE``, off when unset or empty."""
    value = environ.get(DEFLATE_ENV, "").strip().lower()
    if not value:
        return DEFLATE_DEFAULT
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{DEFLATE_ENV}={value!r}: say true or false")


def ws_args(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The websocket flags for ``python -m uvicorn``."""
    return ["--ws", WS_IMPLEMENTATION, "--ws-per-message-deflate", str(ws_deflate(environ)).lower()]


def ws_config(environ: Mapping[str, str] = os.environ) -> dict[str, object]:
    """The same as keyword arguments of ``uvicorn.Config``."""
    return {"ws": WS_IMPLEMENTATION, "ws_per_message_deflate": ws_deflate(environ)}
