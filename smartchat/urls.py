from django.contrib import admin
from django.urls import include, path

from smartchat.health import healthz

urlpatterns = [
    path("", include("helpdesk.web.urls")),
    path("api/v1/", include("helpdesk.api.urls")),
    path("widget/", include("integrations.widget.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]
