"""django-prometheus's per-route middleware, without its one way to a 500."""

from __future__ import annotations

from django_prometheus.middleware import PrometheusAfterMiddleware
from django_prometheus.utils import Time


class RequestMetricsMiddleware(PrometheusAfterMiddleware):
    """Counts and times each request by route (``django_http_*_by_view_*``).

    Its parent reads Content-Length with ``int()`` to record the body's size: a header that is
    no number raised before any view could answer it with a clear 4xx. Such a request is
    counted without its size, and the view answers it as it would without this middleware.
    """

    def process_request(self, request):
        try:
            super().process_request(request)
        except ValueError:
            request.prometheus_after_middleware_event = Time()
