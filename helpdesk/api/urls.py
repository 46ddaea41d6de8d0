from django.urls import path

from . import (
    attachments,
    bulk,
    canned,
    channels,
    contacts,
    employees,
    exports,
    presence,
    reports,
    roles,
    search,
    teams,
    tokens,
    views,
)

app_name = "api"
urlpatterns = [
    path("employees/", employees.EmployeeListApi.as_view(), name="employees"),
    path("employees/<int:employee_id>/", employees.EmployeeDetailApi.as_view(), name="employee"),
    path(
        "employees/<int:employee_id>/deactivate", employees.EmployeeDeactivateApi.as_view(), name="employee-deactivate"
    ),
    path(
        "employees/<int:employee_id>/reactivate", employees.EmployeeReactivateApi.as_view(), name="employee-reactivate"
    ),
    path("presence", presence.PresenceApi.as_view(), name="presence"),
    path("teams/", teams.TeamListApi.as_view(), name="teams"),
    path("teams/<int:team_id>/", teams.TeamDetailApi.as_view(), name="team"),
    path("channels/", channels.ChannelListApi.as_view(), name="channels"),
    path("channels/<int:channel_id>/", channels.ChannelDetailApi.as_view(), name="channel"),
    path("roles/", roles.RoleListApi.as_view(), name="roles"),
    path("roles/<int:role_id>/", roles.RoleDetailApi.as_view(), name="role"),
    path("roles/<int:role_id>/archive", roles.RoleArchiveApi.as_view(), name="role-archive"),
    path("roles/<int:role_id>/unarchive", roles.RoleUnarchiveApi.as_view(), name="role-unarchive"),
    path("contacts/", contacts.ContactListApi.as_view(), name="contacts"),
    path("contacts/<int:contact_id>/", contacts.ContactDetailApi.as_view(), name="contact"),
    path("contacts/<int:contact_id>/block", contacts.ContactBlockApi.as_view(), name="contact-block"),
    path("contacts/<int:contact_id>/unblock", contacts.ContactUnblockApi.as_view(), name="contact-unblock"),
    path("canned-responses/", canned.CannedResponseListApi.as_view(), name="canned-responses"),
    path("tokens/", tokens.TokenListApi.as_view(), name="tokens"),
    path("tokens/<int:token_id>/", tokens.TokenDetailApi.as_view(), name="token"),
    path("tokens/<int:token_id>/revoke", tokens.TokenRevokeApi.as_view(), name="token-revoke"),
    path("conversations/", views.ConversationListApi.as_view(), name="conversations"),
    path("conversations/export.csv", exports.ConversationsCsvApi.as_view(), name="conversations-csv"),
    path("conversations/counts", views.ConversationCountsApi.as_view(), name="conversation-counts"),
    path("conversations/bulk", bulk.BulkApi.as_view(), name="conversation-bulk"),
    path("conversations/<int:conversation_id>/", views.ConversationDetailApi.as_view(), name="conversation"),
    path("conversations/<int:conversation_id>/messages/", views.MessageListApi.as_view(), name="messages"),
    path("conversations/<int:conversation_id>/reply", views.ReplyApi.as_view(), name="reply"),
    path(
        "conversations/<int:conversation_id>/attachments", attachments.AttachmentUploadApi.as_view(), name="attachments"
    ),
    path("conversations/<int:conversation_id>/notes", views.NoteApi.as_view(), name="notes"),
    path("conversations/<int:conversation_id>/assign", views.AssignApi.as_view(), name="assign"),
    path("conversations/<int:conversation_id>/snooze", views.SnoozeApi.as_view(), name="snooze"),
    path("conversations/<int:conversation_id>/priority", views.PriorityApi.as_view(), name="priority"),
    path("conversations/<int:conversation_id>/wake", views.WakeApi.as_view(), name="wake"),
    path("conversations/<int:conversation_id>/resolve", views.ResolveApi.as_view(), name="resolve"),
    path("conversations/<int:conversation_id>/reopen", views.ReopenApi.as_view(), name="reopen"),
    path("conversations/<int:conversation_id>/read", views.ReadApi.as_view(), name="read"),
    path("conversations/<int:conversation_id>/delete", views.ConversationDeleteApi.as_view(), name="delete"),
    path(
        "conversations/<int:conversation_id>/messages/<int:message_id>/delete",
        views.MessageDeleteApi.as_view(),
        name="message-delete",
    ),
    path(
        "conversations/<int:conversation_id>/messages/<int:message_id>/restore",
        views.MessageRestoreApi.as_view(),
        name="message-restore",
    ),
    path(
        "conversations/<int:conversation_id>/messages/<int:message_id>/retry",
        views.MessageRetryApi.as_view(),
        name="message-retry",
    ),
    path("search/", search.SearchApi.as_view(), name="search"),
    path("trash/", views.TrashListApi.as_view(), name="trash"),
    path("trash/<int:conversation_id>/restore", views.TrashRestoreApi.as_view(), name="trash-restore"),
    # Statistics (docs/metrics.md): JSON for BI tools, and each table as CSV (stable URLs).
    path("reports/dashboard", reports.DashboardApi.as_view(), name="report-dashboard"),
    path("reports/heatmap", reports.HeatmapApi.as_view(), name="report-heatmap"),
    path("reports/heatmap/cell", reports.HeatmapCellApi.as_view(), name="report-heatmap-cell"),
    path("reports/live", reports.LiveApi.as_view(), name="report-live"),
    path("reports/tiles.csv", exports.TilesCsvApi.as_view(), name="report-tiles-csv"),
    path("reports/by-hour.csv", exports.ByHourCsvApi.as_view(), name="report-by-hour-csv"),
    path("reports/by-day.csv", exports.ByDayCsvApi.as_view(), name="report-by-day-csv"),
    path("reports/workload-agents.csv", exports.WorkloadAgentsCsvApi.as_view(), name="report-workload-agents-csv"),
    path("reports/workload-teams.csv", exports.WorkloadTeamsCsvApi.as_view(), name="report-workload-teams-csv"),
    path(
        "reports/workload-channels.csv", exports.WorkloadChannelsCsvApi.as_view(), name="report-workload-channels-csv"
    ),
    path("reports/heatmap.csv", exports.HeatmapCsvApi.as_view(), name="report-heatmap-csv"),
    path("reports/heatmap/cell.csv", exports.HeatmapCellCsvApi.as_view(), name="report-heatmap-cell-csv"),
    path("reports/live-agents.csv", exports.LiveAgentsCsvApi.as_view(), name="report-live-agents-csv"),
    path("reports/live-queues.csv", exports.LiveQueuesCsvApi.as_view(), name="report-live-queues-csv"),
]
