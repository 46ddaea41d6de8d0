"""The OpenAPI schema (for employees and token holders) and the Swagger UI page over it."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from helpdesk.web.decorators import employee_required

# YAML by default, JSON with ?format=json; permission: SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"].
schema = SpectacularAPIView.as_view()
# A page for people: signed out, it sends them to sign in rather than answering JSON. Our copy
# of its template puts the Content-Security-Policy nonce on the inline script and style.
swagger_ui = employee_required()(
    SpectacularSwaggerView.as_view(url_name="api-schema", template_name="api/swagger_ui.html")
)
