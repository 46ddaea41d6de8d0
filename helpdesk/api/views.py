"""The agents' REST API: thin views over the gate (access) and the writer (actions)."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from helpdesk.accounts.models import Employee, Team
from helpdesk.conversations import access, actions, queries
from helpdesk.conversations.models import Status
from helpdesk.conversations.snapshots import conversation_summary, message_data


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def summary_with_unread(conversation) -> dict:
    data = conversation_summary(conversation)
    data["unread"] = getattr(conversation, "unread", 0)
    return data


class ConversationListApi(APIView):
    class Filters(serializers.Serializer):
        view = serializers.ChoiceField(choices=queries.VIEWS, default="mine")
        status = serializers.ChoiceField(choices=queries.STATUSES, default=Status.OPEN)

    def get(self, request):
        filters = validated(self.Filters, request.query_params)
        qs = queries.inbox(request.user.employee, **filters)
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([summary_with_unread(c) for c in page])


class ConversationDetailApi(APIView):
    def get(self, request, conversation_id: int):
        conversation = access.get_conversation(request.user.employee, conversation_id)
        return Response(conversation_summary(conversation))


class MessageListApi(APIView):
    def get(self, request, conversation_id: int):
        employee = request.user.employee
        conversation = access.get_conversation(employee, conversation_id)
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        page = paginator.paginate_queryset(queries.thread(conversation), request, view=self)
        reveal = access.sees_deleted(employee)
        return paginator.get_paginated_response([message_data(m, reveal_deleted=reveal) for m in page])


class _BodyInput(serializers.Serializer):
    body = serializers.CharField(trim_whitespace=True, allow_blank=False)


class ReplyApi(APIView):
    def post(self, request, conversation_id: int):
        conversation = access.get_conversation(request.user.employee, conversation_id)
        data = validated(_BodyInput, request.data)
        message = actions.post_reply(conversation, by=request.user.employee, body=data["body"])
        return Response(message_data(message), status=status.HTTP_201_CREATED)


class NoteApi(APIView):
    def post(self, request, conversation_id: int):
        conversation = access.get_conversation(request.user.employee, conversation_id)
        data = validated(_BodyInput, request.data)
        message = actions.add_note(conversation, by=request.user.employee, body=data["body"])
        return Response(message_data(message), status=status.HTTP_201_CREATED)


class AssignApi(APIView):
    class Input(serializers.Serializer):
        assignee_id = serializers.IntegerField(allow_null=True, required=False)
        team_id = serializers.IntegerField(allow_null=True, required=False)

    def post(self, request, conversation_id: int):
        employee = request.user.employee
        conversation = access.get_conversation(employee, conversation_id)
        data = validated(self.Input, request.data)
        changes = {}
        # Another company's ids answer 404, the same as ids that don't exist.
        if "assignee_id" in data:
            changes["assignee"] = (
                None
                if data["assignee_id"] is None
                else get_object_or_404(Employee, pk=data["assignee_id"], company_id=employee.company_id)
            )
        if "team_id" in data:
            changes["team"] = (
                None
                if data["team_id"] is None
                else get_object_or_404(Team, pk=data["team_id"], company_id=employee.company_id)
            )
        actions.assign(conversation, by=employee, **changes)
        return Response(conversation_summary(conversation))


class SnoozeApi(APIView):
    class Input(serializers.Serializer):
        until = serializers.DateTimeField()

    def post(self, request, conversation_id: int):
        conversation = access.get_conversation(request.user.employee, conversation_id)
        data = validated(self.Input, request.data)
        actions.snooze(conversation, by=request.user.employee, until=data["until"])
        return Response(conversation_summary(conversation))


def _status_api(action_name: str):
    class StatusApi(APIView):
        def post(self, request, conversation_id: int):
            conversation = access.get_conversation(request.user.employee, conversation_id)
            getattr(actions, action_name)(conversation, by=request.user.employee)
            return Response(conversation_summary(conversation))

    StatusApi.__name__ = f"{action_name.capitalize()}Api"
    return StatusApi


ResolveApi = _status_api("resolve")
ReopenApi = _status_api("reopen")
WakeApi = _status_api("wake")


class ReadApi(APIView):
    def post(self, request, conversation_id: int):
        conversation = access.get_conversation(request.user.employee, conversation_id)
        actions.mark_read(conversation, employee=request.user.employee)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Deleting and restoring: nothing is destroyed --------------------------------------------------


def _message_in(conversation, message_id: int):
    # A message of another conversation answers 404, even when that one is visible too.
    message = conversation.messages.select_related("author_employee", "author_contact").filter(pk=message_id).first()
    if message is None:
        raise Http404
    return message


class MessageDeleteApi(APIView):
    def post(self, request, conversation_id: int, message_id: int):
        employee = request.user.employee
        message = _message_in(access.get_conversation(employee, conversation_id), message_id)
        message = actions.delete_message(message, by=employee)
        return Response(message_data(message, reveal_deleted=access.sees_deleted(employee)))


class MessageRestoreApi(APIView):
    def post(self, request, conversation_id: int, message_id: int):
        employee = request.user.employee
        message = _message_in(access.get_conversation(employee, conversation_id), message_id)
        message = actions.restore_message(message, by=employee)
        return Response(message_data(message))


class ConversationDeleteApi(APIView):
    def post(self, request, conversation_id: int):
        conversation = access.get_conversation(request.user.employee, conversation_id)
        actions.delete_conversation(conversation, by=request.user.employee)
        return Response(conversation_summary(conversation))


def trashed_summary(conversation) -> dict:
    data = conversation_summary(conversation)
    data["deleted_at"] = conversation.deleted_at.isoformat() if conversation.deleted_at else None
    data["deleted_by_name"] = conversation.deleted_by.display_name if conversation.deleted_by_id else None
    return data


class TrashListApi(APIView):
    """Deleted conversations in the employee's scope, most recently deleted first."""

    def get(self, request):
        qs = (
            access.trash(request.user.employee)
            .select_related("contact", "channel", "assignee", "deleted_by")
            .order_by("-deleted_at", "-pk")
        )
        paginator = api_settings.DEFAULT_PAGINATION_CLASS()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response([trashed_summary(c) for c in page])


class TrashRestoreApi(APIView):
    def post(self, request, conversation_id: int):
        conversation = access.get_deleted_conversation(request.user.employee, conversation_id)
        actions.restore_conversation(conversation, by=request.user.employee)
        return Response(conversation_summary(conversation))
