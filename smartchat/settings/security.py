"""Security (cookies, proxies, Content-Security-Policy, HTTPS) and observability (logs, metrics)."""

from __future__ import annotations

from csp.constants import NONCE, NONE, SELF
from django_guid.integrations import CeleryIntegration

from helpdesk.observability import logs, multiprocess
from smartchat import env

# --- Security ------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# The proxies in front (IPs and CIDR networks) whose X-Forwarded-For and X-Forwarded-Proto are
# believed, for HTTP and websockets alike: smartchat.asgi applies them to the connection before
# Django or Channels see it, and uvicorn itself runs with --no-proxy-headers. Empty: none, the
# peer's own address and scheme count.
TRUSTED_PROXIES = env.networks("TRUSTED_PROXIES")
# Content-Security-Policy on every answer (django-csp). Scripts and styles come from our own
# origin; an inline <script>/<style> runs only with the response's nonce
# (nonce="{{ request.csp_nonce }}"), and no page has inline event handlers or style attributes.
# connect-src: 'self' and the same host's ws:/wss: origin (smartchat/security.py). Images may be
# data: URIs (the favicon, Swagger UI's icons). CSP_REPORT_ONLY=true sends it as
# Content-Security-Policy-Report-Only, to try a change; CSP_REPORT_URI names where browsers report.
_csp = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}
if _csp_report_uri := env.string("CSP_REPORT_URI", ""):
    _csp["DIRECTIVES"]["report-uri"] = [_csp_report_uri]
if env.boolean("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY = None, _csp
else:
    CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY = _csp, None
if env.boolean("HTTPS", False):
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", True)
    # No SECURE_PROXY_SSL_HEADER: it would believe X-Forwarded-Proto from anyone. The scheme a
    # trusted proxy reports arrives as the connection's own (see TRUSTED_PROXIES).
    SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.boolean("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env.boolean("SECURE_HSTS_PRELOAD", True)

EMAIL_BACKEND = env.string("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")

# --- Observability (docs/operations.md) ------------------------------------------------------
# Logs: "json" (one JSON object a line, for a log collector; the Docker image's default) or
# "text" (for people, the default elsewhere). Every line carries the request id.
LOG_FORMAT = env.choice("LOG_FORMAT", "text", ("json", "text"))
LOGGING = logs.logging_config(log_format=LOG_FORMAT, level=env.string("LOG_LEVEL", "INFO"))
# The request id: an incoming X-Request-ID is kept when it is a UUID, otherwise one is made; it
# is sent back in the response's X-Request-ID and travels into the Celery tasks queued meanwhile.
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    # Not exposed to scripts of other origins: the widget's answers expose Retry-After, and
    # django-guid would replace that list rather than add to it.
    "EXPOSE_HEADER": False,
    "INTEGRATIONS": [CeleryIntegration()],
}
# Prometheus /metrics: off (404) unless METRICS_TOKEN (scrapers send "Authorization: Bearer
# <token>") or METRICS_ALLOWED_IPS (addresses and networks, the client's after TRUSTED_PROXIES)
# is set; with either, anyone else gets 403.
METRICS_TOKEN = env.string("METRICS_TOKEN", "")
METRICS_ALLOWED_IPS = env.networks("METRICS_ALLOWED_IPS")
# A directory every process of the machine shares (web, worker, poller): each writes its counts
# there and /metrics adds them up (helpdesk/observability/multiprocess.py). Unset: each process
# shows only its own, and the worker's (task failures, its messages and events) are not seen.
PROMETHEUS_MULTIPROC_DIR = env.string("PROMETHEUS_MULTIPROC_DIR", "")
try:
    multiprocess.prepare(PROMETHEUS_MULTIPROC_DIR)
except OSError as exc:
    raise env.ConfigError(
        f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is not a usable directory: {exc}"
    ) from exc
