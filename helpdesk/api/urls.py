from django.urls import path

from . import views

app_name = "api"
urlpatterns = [
    path("conversations/", views.ConversationListApi.as_view(), name="conversations"),
    path("conversations/<int:conversation_id>/", views.ConversationDetailApi.as_view(), name="conversation"),
    path("conversations/<int:conversation_id>/messages/", views.MessageListApi.as_view(), name="messages"),
    path("conversations/<int:conversation_id>/reply", views.ReplyApi.as_view(), name="reply"),
    path("conversations/<int:conversation_id>/notes", views.NoteApi.as_view(), name="notes"),
    path("conversations/<int:conversation_id>/assign", views.AssignApi.as_view(), name="assign"),
    path("conversations/<int:conversation_id>/snooze", views.SnoozeApi.as_view(), name="snooze"),
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
    path("trash/", views.TrashListApi.as_view(), name="trash"),
    path("trash/<int:conversation_id>/restore", views.TrashRestoreApi.as_view(), name="trash-restore"),
]
