"""A health check for load balancers and docker-compose: the database and the channel layer answer."""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


async def _layer_round_trip() -> None:
    layer = get_channel_layer()
    # A channel of its own, not one of new_channel's: those all sit on the process's one list,
    # which helpdesk/realtime/sockets.py's LayerReader alone reads while sockets are open.
    channel = f"healthz.{uuid.uuid4().hex}"
    await layer.send(channel, {"type": "health.ping"})
    await asyncio.wait_for(layer.receive(channel), timeout=2)


def _channel_layer() -> str:
    # A round trip through the layer (Redis in production): send to a fresh channel, read it back.
    async_to_sync(_layer_round_trip)()
    return "ok"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    for name, probe in (("database", _database), ("channel_layer", _channel_layer)):
        try:
            checks[name] = probe()
        except Exception as exc:  # a health check reports failures, it does not raise them
            checks[name] = f"error: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JsonResponse({"ok": healthy, **checks}, status=200 if healthy else 503)
