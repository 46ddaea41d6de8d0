"""The Content-Security-Policy middleware: django-csp's, naming the same host's websockets.

CSP level 3 lets 'self' in connect-src match ws:/wss: of the page's own host, and current
Chromium, Firefox and Safari do; older browsers (Safari before 15.4) need the origin itself.
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class SameHostSocketsCSPMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts  # answered 400 already; 'self' is all it gets
        socket_origin = f"{'wss' if request.is_secure() else 'ws'}://{host}"
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), socket_origin]
        parts.update = update
        return parts
