"""``/metrics`` for Prometheus (behind a token or an address allow-list) and ``/readyz``."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from helpdesk.events.audit import client_ip

from . import multiprocess as shared
from .collectors import DatabaseCollector
from .readiness import readiness

log = logging.getLogger(__name__)

_database = CollectorRegistry(auto_describe=False)
_database.register(DatabaseCollector())


def allowed(request: HttpRequest) -> bool | None:
    """May this request read /metrics? None: /metrics is not configured at all (no token, no list).

    A right bearer token (METRICS_TOKEN) or an address in METRICS_ALLOWED_IPS (the client's,
    after the TRUSTED_PROXIES rule) is enough; either one configured alone is the only way in.
    """
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
    if not token and not networks:
        return None
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return True
    if networks and (address := client_ip(request)):
        ip = ipaddress.ip_address(address)
        return any(ip in ipaddress.ip_network(network) for network in networks)
    return False


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    verdict = allowed(request)
    if verdict is None:
        # Off unless configured: nothing tells a stranger that it exists.
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    if not verdict:
        return HttpResponse(
            "Forbidden: a bearer token or an allowed address is required\n", status=403, content_type="text/plain"
        )
    try:
        if shared.directory():
            shared.forget_dead_processes()
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        counted = generate_latest(registry)
    except Exception:  # an unreadable file in the shared directory, say: a 503, never a 500
        log.exception("could not collect the metrics")
        return HttpResponse("Metrics unavailable, see the log\n", status=503, content_type="text/plain")
    return HttpResponse(counted + generate_latest(_database), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to take traffic: the database and Redis answer, and every migration is applied."""
    ready, checks, reason = readiness()
    body = {"ready": ready, "checks": checks}
    if not ready:
        body["reason"] = reason
    return JsonResponse(body, status=200 if ready else 503)
