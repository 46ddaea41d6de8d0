"""One action on several conversations at once: all ids are checked first, then each is applied."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts.models import Employee
from helpdesk.conversations import access, actions, snooze
from helpdesk.conversations.models import Conversation, Priority
from helpdesk.conversations.snapshots import conversation_summary
from helpdesk.errors import ActionError

from .schema import ErrorDetailOut, errors
from .serializers import ConversationOut
from .views import SnoozeFields, snooze_until, validated_in_company_time

BULK_MAX = 100
BULK_ACTIONS = ("assign", "snooze", "resolve", "priority")


class BulkResultOut(serializers.Serializer):
    id = serializers.IntegerField()
    ok = serializers.BooleanField()
    conversation = ConversationOut(required=False, help_text=_("Its state afterwards, when ok."))
    error = ErrorDetailOut(required=False, help_text=_("Why the action was refused for it, when not ok."))


class BulkOut(serializers.Serializer):
    results = BulkResultOut(many=True)


def _applier(employee: Employee, data: dict) -> Callable[[Conversation], Conversation]:
    """The action to apply to each conversation, its arguments resolved (and checked) once."""
    action = data["action"]
    if action == "assign":
        changes: dict[str, Any] = {}
        if "assignee_id" in data:
            changes["assignee"] = (
                None if data["assignee_id"] is None else access.get_employee(employee, data["assignee_id"])
            )
        if "team_id" in data:
            changes["team"] = None if data["team_id"] is None else access.get_team(employee, data["team_id"])
        return partial(actions.assign, by=employee, **changes)
    if action == "snooze":
        # One wake time for the whole batch, refused at once if it is already past.
        until = snooze.clean_until(snooze_until(employee, data))
        return partial(actions.snooze, by=employee, until=until)
    if action == "resolve":
        return partial(actions.resolve, by=employee)
    return partial(actions.set_priority, by=employee, priority=data["priority"])


class BulkApi(APIView):
    class Input(SnoozeFields):
        ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1), min_length=1, max_length=BULK_MAX, allow_empty=False
        )
        action = serializers.ChoiceField(choices=BULK_ACTIONS)
        assignee_id = serializers.IntegerField(allow_null=True, required=False)
        team_id = serializers.IntegerField(allow_null=True, required=False)
        priority = serializers.ChoiceField(choices=Priority.choices, required=False)

        def wants_snooze(self, data: dict) -> bool:
            return data["action"] == "snooze"

        def validate(self, data: dict) -> dict:
            data = super().validate(data)
            if data["action"] == "assign" and "assignee_id" not in data and "team_id" not in data:
                raise ValidationError({"assignee_id": [_("Give assignee_id, team_id or both.")]})
            if data["action"] == "priority" and "priority" not in data:
                raise ValidationError({"priority": [_("This field is required.")]})
            return data

    @extend_schema(
        tags=["conversations"],
        request=Input,
        responses={200: BulkOut, **errors(400, 403, 404)},
        description=(
            "Assign, snooze, resolve or set the priority of up to 100 conversations. Every id (and assignee_id, "
            "team_id) is checked first: one that is missing, another company's or outside what you may see answers "
            "404 and nothing changes. Then each conversation gets the action in a transaction of its own; a rule "
            "that refuses it for one conversation (a resolved one can't be snoozed) is reported in its result."
        ),
    )
    def post(self, request):
        employee = request.user.employee
        data = validated_in_company_time(self.Input, employee, request.data)
        conversations = access.get_conversations(employee, data["ids"])
        apply = _applier(employee, data)  # an assignee or team of another company: 404 here, nothing changed
        results = []
        for conversation in conversations:
            # A missing permission is the same for every conversation: the first one raises it,
            # before anything changed, and it answers 403.
            try:
                apply(conversation)
            except ActionError as exc:
                results.append(
                    {"id": conversation.pk, "ok": False, "error": {"code": exc.code, "message": exc.message}}
                )
            else:
                results.append({"id": conversation.pk, "ok": True, "conversation": conversation_summary(conversation)})
        return Response({"results": results})
