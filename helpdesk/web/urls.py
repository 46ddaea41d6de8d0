from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import audit_views, trash_views, views
from .auth_views import SignInView, sign_in_code, two_factor, two_factor_disable, two_factor_enable

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", SignInView.as_view(), name="login"),
    path("login/code/", sign_in_code, name="login-2fa"),
    path("settings/two-factor/", two_factor, name="two-factor"),
    path("settings/two-factor/enable", two_factor_enable, name="two-factor-enable"),
    path("settings/two-factor/disable", two_factor_disable, name="two-factor-disable"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The link in the invitation e-mail (and for a forgotten password, sent by an admin).
    path(
        "account/set-password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="web/set_password.html", success_url=reverse_lazy("web:set-password-done")
        ),
        name="set-password",
    ),
    path(
        "account/set-password/done/",
        auth_views.PasswordResetCompleteView.as_view(template_name="web/set_password_done.html"),
        name="set-password-done",
    ),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/<int:conversation_id>/", views.inbox, name="conversation"),
    path("settings/channels/", views.channel_list, name="channels"),
    path("settings/channels/<int:channel_id>/", views.channel_detail, name="channel"),
    path("settings/audit-log/", audit_views.audit_log, name="audit-log"),
    path("settings/audit-log/export/", audit_views.audit_log_export, name="audit-log-export"),
    path("settings/trash/", trash_views.trash, name="trash"),
    path("settings/trash/<int:conversation_id>/restore/", trash_views.restore, name="trash-restore"),
    path("demo/", views.demo, name="demo-default"),
    path("demo/<str:public_key>/", views.demo, name="demo"),
]
