"""The agents' REST API: thin views over the gate (access) and the writer (actions)."""

from __future__ import annotations

import re
from datetime import datetime

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts.models import Employee, Scope, Team
from helpdesk.conversations import access, actions, queries, snooze
from helpdesk.conversations.models import Conversation, Message, Priority, Status
from helpdesk.conversations.snapshots import conversation_summary, message_data
from helpdesk.errors import ActionError

from .filters import ConversationFilter
from .pagination import InboxPages
from .schema import errors
from .serializers import (
    ConversationDetailOut,
    ConversationOut,
    ConversationRowOut,
    CountsOut,
    MessageOut,
    TrashedConversationOut,
)


def validated(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


@extend_schema(tags=["conversations"], responses={200: ConversationRowOut(many=True), **errors(400)})
class ConversationListApi(ListAPIView):
    """The inbox: a view (mine / unassigned / all / mentions) and a status, newest activity first.

    Pages by ``limit``/``offset``, or by ``cursor`` (each page's ``next_cursor``): keyset pages, as
    fast at the end of a long tab as at its start.
    """

    serializer_class = ConversationRowOut
    filterset_class = ConversationFilter
    pagination_class = InboxPages

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no employee
            return Conversation.objects.none()
        employee = self.request.user.employee
        # A team scope's gate reads the team ids; the Mentions view's filter (ConversationFilter)
        # then takes the same ones instead of reading them again.
        teams = access.team_ids(employee) if employee.role.scope == Scope.TEAMS else None
        self.request.inbox_team_ids = teams
        visible = access.visible_conversations(employee, teams=teams)
        return queries.inbox_rows(visible, employee, narrow=True)


class ConversationCountsApi(APIView):
    class Input(serializers.Serializer):
        status = serializers.ChoiceField(choices=Status.choices, default=Status.OPEN)

    @extend_schema(
        tags=["conversations"],
        parameters=[Input],
        responses={200: CountsOut, **errors(400)},
        description="The inbox sidebar: conversations per view for a status; mentions counts unread mentions.",
    )
    def get(self, request):
        # A plain dict: from a QueryDict DRF would read "status=" as "not given" and use the default.
        data = validated(self.Input, request.query_params.dict())
        return Response(queries.counts(request.user.employee, status=data["status"]))


class ConversationDetailApi(APIView):
    @extend_schema(tags=["conversations"], responses={200: ConversationDetailOut, **errors(404)})
    def get(self, request, conversation_id: int):
        conversation = access.get_conversation(request.user.employee, conversation_id)
        return Response(ConversationDetailOut(conversation).data)


@extend_schema(tags=["conversations"], responses={200: MessageOut(many=True), **errors(400, 404)})
class MessageListApi(ListAPIView):
    """A conversation's messages and internal notes, oldest first."""

    serializer_class = MessageOut

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Message.objects.none()
        conversation = access.get_conversation(self.request.user.employee, self.kwargs["conversation_id"])
        return queries.thread(conversation)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["reveal_deleted"] = access.sees_deleted(self.request.user.employee)
        return context


class _BodyInput(serializers.Serializer):
    body = serializers.CharField(
        trim_whitespace=True, allow_blank=True, required=False, default="", help_text=_("May be empty with files.")
    )
    attachments = serializers.ListField(
        child=serializers.IntegerField(),
        max_length=100,
        required=False,
        default=list,
        help_text=_(
            "Ids of your own uploads in this conversation (POST …/attachments) to send with it. Another's upload, "
            "one already sent, or another conversation's refuses the whole message (400, code bad_attachment)."
        ),
    )

    def validate(self, data: dict) -> dict:
        if not data["body"] and not data["attachments"]:
            raise ValidationError({"body": [_("Write a message or attach a file.")]})
        return data


IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:-]{8,64}")
IDEMPOTENCY_PARAMETER = OpenApiParameter(
    "Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    description=_(
        "Optional: 8 to 64 letters, digits or . _ : - (a UUID fits), new for each message. Send it again with a "
        "resend whose answer was lost (a 503 with Retry-After, a timeout): if the message was stored under it "
        "(yours, in this conversation), the answer is 200 with that message and the header Idempotent-Replayed: "
        "true, and nothing is written or sent again. The same key with a different message answers 409 (code "
        "idempotency_conflict); a malformed key 400 (code bad_idempotency_key)."
    ),
)


def idempotency_key(request) -> str | None:
    """The request's Idempotency-Key header, checked: None without one, 400 when malformed."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ActionError(
            _("The Idempotency-Key header must be 8 to 64 letters, digits or . _ : - characters."),
            code="bad_idempotency_key",
        )
    return key


def created(message: Message) -> Response:
    """201 with a new message; 200 with the stored one a resend under its Idempotency-Key found."""
    if getattr(message, "replayed", False):
        return Response(message_data(message), status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})
    return Response(message_data(message), status=status.HTTP_201_CREATED)


def _sent(description):
    return {
        200: OpenApiResponse(MessageOut, description=_("A resend: the message stored under its Idempotency-Key.")),
        201: OpenApiResponse(MessageOut, description=description),
        **errors(400, 403, 404, 409),
    }


class ReplyApi(APIView):
    @extend_schema(
        tags=["conversations"],
        request=_BodyInput,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses=_sent(_("The reply, stored and queued for delivery.")),
    )
    def post(self, request, conversation_id: int):
        key = idempotency_key(request)
        conversation = access.get_conversation(request.user.employee, conversation_id)
        data = validated(_BodyInput, request.data)
        message = actions.post_reply(
            conversation,
            by=request.user.employee,
            body=data["body"],
            attachment_ids=data["attachments"],
            idempotency_key=key,
        )
        return created(message)


class NoteMentions(serializers.Serializer):
    employees = serializers.ListField(child=serializers.IntegerField(), max_length=50, required=False)
    teams = serializers.ListField(child=serializers.IntegerField(), max_length=50, required=False)


class NoteApi(APIView):
    class Input(_BodyInput):
        mentions = NoteMentions(
            required=False,
            help_text=_(
                "Whom the note @mentions, by id. Each of them must be able to see the conversation (of a team, at "
                "least one member); another company's id answers 404."
            ),
        )

    @extend_schema(
        tags=["conversations"],
        request=Input,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses=_sent(_("The note, stored.")),
    )
    def post(self, request, conversation_id: int):
        key = idempotency_key(request)
        employee = request.user.employee
        conversation = access.get_conversation(employee, conversation_id)
        data = validated(self.Input, request.data)
        mentions = data.get("mentions") or {}
        message = actions.add_note(
            conversation,
            by=employee,
            body=data["body"],
            mention_employees=access.get_employees(employee, mentions.get("employees") or []),
            mention_teams=access.get_teams(employee, mentions.get("teams") or []),
            attachment_ids=data["attachments"],
            idempotency_key=key,
        )
        return created(message)


class AssignApi(APIView):
    class Input(serializers.Serializer):
        assignee_id = serializers.IntegerField(allow_null=True, required=False)
        team_id = serializers.IntegerField(allow_null=True, required=False)

    @extend_schema(
        tags=["conversations"],
        request=Input,
        responses={200: ConversationOut, **errors(400, 403, 404)},
        description="Give the conversation to an employee and/or a team; null clears either.",
    )
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


class PriorityApi(APIView):
    class Input(serializers.Serializer):
        priority = serializers.ChoiceField(
            choices=Priority.choices, help_text="0 none, 1 low, 2 medium, 3 high, 4 urgent."
        )

    @extend_schema(
        tags=["conversations"],
        request=Input,
        responses={200: ConversationOut, **errors(400, 403, 404)},
        description="Set the priority: higher priorities are handed out first and listed first by ordering=priority.",
    )
    def post(self, request, conversation_id: int):
        conversation = access.get_conversation(request.user.employee, conversation_id)
        data = validated(self.Input, request.data)
        actions.set_priority(conversation, by=request.user.employee, priority=data["priority"])
        return Response(conversation_summary(conversation))


class SnoozeFields(serializers.Serializer):
    """Until when to snooze: a time, or a preset computed on the company's clock."""

    until = serializers.DateTimeField(
        required=False, help_text=_("A time without an offset is read in the company's time zone.")
    )
    preset = serializers.ChoiceField(
        choices=list(snooze.PRESETS),
        required=False,
        help_text=_("Instead of until: hour (in 1 hour), tomorrow (9:00) or next_monday (9:00), company time."),
    )

    def validate(self, data: dict) -> dict:
        if self.wants_snooze(data) and ("until" in data) == ("preset" in data):
            raise ValidationError({"until": [_("Give either until or preset.")]})
        return data

    def wants_snooze(self, data: dict) -> bool:
        return True


def snooze_until(employee: Employee, data: dict) -> datetime:
    """The wake time a validated request asks for; presets are computed now, on the company's clock."""
    if "preset" in data:
        return snooze.preset_time(data["preset"], company=employee.company)
    return data["until"]


def validated_in_company_time(serializer_class, employee: Employee, data) -> dict:
    """Validate with times that carry no offset read in the employee's company time zone.

    Not left to the middleware: a request with an API key is authenticated after it ran.
    """
    with timezone.override(snooze.company_zone(employee.company)):
        return validated(serializer_class, data)


class SnoozeApi(APIView):
    class Input(SnoozeFields):
        pass

    @extend_schema(
        tags=["conversations"],
        request=Input,
        responses={200: ConversationOut, **errors(400, 403, 404)},
        description="Snooze until a time or a preset; a time in the past is refused (400, code past).",
    )
    def post(self, request, conversation_id: int):
        employee = request.user.employee
        conversation = access.get_conversation(employee, conversation_id)
        data = validated_in_company_time(self.Input, employee, request.data)
        actions.snooze(conversation, by=employee, until=snooze_until(employee, data))
        return Response(conversation_summary(conversation))


def _status_api(action_name: str):
    class StatusApi(APIView):
        @extend_schema(
            tags=["conversations"],
            operation_id=f"conversations_{action_name}",
            request=None,
            responses={200: ConversationOut, **errors(400, 403, 404)},
        )
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
    @extend_schema(tags=["conversations"], request=None, responses={204: None, **errors(404)})
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
    @extend_schema(tags=["conversations"], request=None, responses={200: MessageOut, **errors(403, 404)})
    def post(self, request, conversation_id: int, message_id: int):
        employee = request.user.employee
        message = _message_in(access.get_conversation(employee, conversation_id), message_id)
        message = actions.delete_message(message, by=employee)
        return Response(message_data(message, reveal_deleted=access.sees_deleted(employee)))


class MessageRestoreApi(APIView):
    @extend_schema(tags=["conversations"], request=None, responses={200: MessageOut, **errors(403, 404)})
    def post(self, request, conversation_id: int, message_id: int):
        employee = request.user.employee
        message = _message_in(access.get_conversation(employee, conversation_id), message_id)
        message = actions.restore_message(message, by=employee)
        return Response(message_data(message))


class MessageRetryApi(APIView):
    """Send a message that was not delivered (failed, or unknown after an interrupted send) again."""

    @extend_schema(tags=["conversations"], request=None, responses={200: MessageOut, **errors(400, 403, 404)})
    def post(self, request, conversation_id: int, message_id: int):
        employee = request.user.employee
        conversation = access.get_conversation(employee, conversation_id)
        message = conversation.messages.select_related("author_employee", "delivery").filter(pk=message_id).first()
        if message is None:
            raise Http404
        delivery = Message.delivery.related.get_cached_value(message, default=None)
        if delivery is None:
            raise ActionError(_("This message is not sent through a delivery."), code="not_retryable")
        delivery.conversation = conversation
        message.delivery = actions.retry_delivery(delivery, by=employee)
        return Response(message_data(message))


class ConversationDeleteApi(APIView):
    @extend_schema(tags=["conversations"], request=None, responses={200: ConversationOut, **errors(403, 404)})
    def post(self, request, conversation_id: int):
        conversation = access.get_conversation(request.user.employee, conversation_id)
        actions.delete_conversation(conversation, by=request.user.employee)
        return Response(conversation_summary(conversation))


@extend_schema(tags=["trash"], responses={200: TrashedConversationOut(many=True), **errors(400, 403)})
class TrashListApi(ListAPIView):
    """Deleted conversations in the employee's scope, most recently deleted first."""

    serializer_class = TrashedConversationOut

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Conversation.objects.none()
        return (
            access.trash(self.request.user.employee)
            .select_related("contact", "channel", "assignee", "deleted_by")
            .order_by("-deleted_at", "-pk")
        )


class TrashRestoreApi(APIView):
    @extend_schema(tags=["trash"], request=None, responses={200: ConversationOut, **errors(403, 404)})
    def post(self, request, conversation_id: int):
        conversation = access.get_deleted_conversation(request.user.employee, conversation_id)
        actions.restore_conversation(conversation, by=request.user.employee)
        return Response(conversation_summary(conversation))
