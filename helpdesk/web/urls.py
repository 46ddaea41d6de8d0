from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import token_views, views

app_name = "web"
urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="web/login.html", redirect_authenticated_user=True),
        name="login",
    ),
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
    path("settings/api-tokens/", token_views.api_tokens, name="api-tokens"),
    path("settings/api-tokens/<int:token_id>/revoke/", token_views.api_token_revoke, name="api-token-revoke"),
    path("settings/channels/", views.channel_list, name="channels"),
    path("settings/channels/<int:channel_id>/", views.channel_detail, name="channel"),
    path("demo/", views.demo, name="demo-default"),
    path("demo/<str:public_key>/", views.demo, name="demo"),
]
