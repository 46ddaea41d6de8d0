from django.contrib import admin
from django.urls import include, path

from helpdesk.api import docs as api_docs
from helpdesk.observability import views as observability
from helpdesk.web import file_views
from smartchat.health import healthz

urlpatterns = [
    path("", include("helpdesk.web.urls")),
    path("api/v1/", include("helpdesk.api.urls")),
    path("api/schema/", api_docs.schema, name="api-schema"),
    path("api/docs/", api_docs.swagger_ui, name="api-docs"),
    # A file by its signed link (attachments.link): the name is for the browser, the token decides.
    path("files/<str:token>/<path:name>", file_views.attachment_file, name="attachment-file"),
    path("widget/", include("integrations.widget.urls")),
    path("hooks/telegram/", include("integrations.telegram.urls")),
    path("hooks/vk/", include("integrations.vk.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("readyz", observability.readyz, name="readyz"),
    # Prometheus; refused without METRICS_TOKEN or METRICS_ALLOWED_IPS (docs/operations.md).
    path("metrics", observability.metrics, name="metrics"),
]

# Under /api/ these answer the API's JSON error shape; elsewhere, Django's own pages.
handler400 = "helpdesk.api.errors.bad_request"
handler403 = "helpdesk.api.errors.permission_denied"
handler404 = "helpdesk.api.errors.page_not_found"
handler500 = "helpdesk.api.errors.server_error"
