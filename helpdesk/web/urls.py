from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import (
    audit_views,
    channel_views,
    contact_views,
    presence_views,
    reply_views,
    report_views,
    search_views,
    settings_views,
    token_views,
    trash_views,
    views,
)
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
    path("presence/", presence_views.set_presence, name="presence"),
    path("inbox/", views.inbox, name="inbox"),
    path("inbox/<int:conversation_id>/", views.inbox, name="conversation"),
    path("search/", search_views.search_page, name="search"),
    path("reports/", report_views.reports, name="reports"),
    path("reports/heatmap/cell/", report_views.heatmap_cell, name="reports-heatmap-cell"),
    path("reports/live/", report_views.live_block, name="reports-live"),
    path("settings/company/", settings_views.company_settings, name="settings-company"),
    path("settings/company/logo/", settings_views.company_logo, name="company-logo"),
    path("settings/company/logo/upload/", settings_views.company_logo_upload, name="company-logo-upload"),
    path("settings/company/logo/remove/", settings_views.company_logo_remove, name="company-logo-remove"),
    path("settings/employees/", settings_views.employee_list, name="employees"),
    path("settings/employees/new/", settings_views.employee_add, name="employee-add"),
    path("settings/employees/<int:employee_id>/", settings_views.employee_detail, name="employee"),
    path(
        "settings/employees/<int:employee_id>/send-link/",
        settings_views.employee_send_link,
        name="employee-send-link",
    ),
    path(
        "settings/employees/<int:employee_id>/deactivate/",
        settings_views.employee_deactivate,
        name="employee-deactivate",
    ),
    path(
        "settings/employees/<int:employee_id>/reactivate/",
        settings_views.employee_reactivate,
        name="employee-reactivate",
    ),
    path(
        "settings/employees/<int:employee_id>/reset-2fa/",
        settings_views.employee_reset_2fa,
        name="employee-reset-2fa",
    ),
    path("settings/teams/", settings_views.team_list, name="teams"),
    path("settings/teams/<int:team_id>/", settings_views.team_detail, name="team"),
    path("settings/roles/", settings_views.role_list, name="roles"),
    path("settings/roles/new/", settings_views.role_add, name="role-add"),
    path("settings/roles/<int:role_id>/", settings_views.role_detail, name="role"),
    path("settings/roles/<int:role_id>/archive/", settings_views.role_archive, name="role-archive"),
    path("settings/roles/<int:role_id>/unarchive/", settings_views.role_unarchive, name="role-unarchive"),
    path("settings/api-tokens/", token_views.api_tokens, name="api-tokens"),
    path("settings/api-tokens/<int:token_id>/revoke/", token_views.api_token_revoke, name="api-token-revoke"),
    path("settings/channels/", channel_views.channel_list, name="channels"),
    path("settings/channels/add/<slug:kind>/", channel_views.channel_add, name="channel_add"),
    path("settings/channels/<int:channel_id>/", channel_views.channel_detail, name="channel"),
    path("settings/channels/<int:channel_id>/state/", channel_views.channel_state, name="channel_state"),
    # A channel link's QR code: /settings/channels/<id>/telegram-qr.png?start=<source>
    path(
        "settings/channels/<int:channel_id>/<slug:kind>-qr.<slug:fmt>",
        channel_views.channel_link_qr,
        name="channel_link_qr",
    ),
    path("settings/audit-log/", audit_views.audit_log, name="audit-log"),
    path("settings/audit-log/export/", audit_views.audit_log_export, name="audit-log-export"),
    path("settings/trash/", trash_views.trash, name="trash"),
    path("settings/trash/<int:conversation_id>/restore/", trash_views.restore, name="trash-restore"),
    path("settings/canned-responses/", reply_views.canned_responses, name="canned-responses"),
    path("settings/canned-responses/<int:canned_id>/", reply_views.canned_response, name="canned-response"),
    path(
        "settings/canned-responses/<int:canned_id>/archive/",
        reply_views.canned_response_archive,
        name="canned-response-archive",
    ),
    path("settings/quick-answers/", reply_views.quick_answer_list, name="quick-answers"),
    path("settings/quick-answers/new/", reply_views.quick_answer_add, name="quick-answer-add"),
    path("settings/quick-answers/test/", reply_views.quick_answer_test, name="quick-answer-test"),
    path("settings/quick-answers/<int:quick_answer_id>/", reply_views.quick_answer, name="quick-answer"),
    path(
        "settings/quick-answers/<int:quick_answer_id>/archive/",
        reply_views.quick_answer_archive,
        name="quick-answer-archive",
    ),
    path("settings/blocked-contacts/", contact_views.blocked_contacts, name="blocked-contacts"),
    path("settings/blocked-contacts/<int:contact_id>/unblock/", contact_views.unblock, name="blocked-contact-unblock"),
    path("demo/", views.demo, name="demo-default"),
    path("demo/<str:public_key>/", views.demo, name="demo"),
]
