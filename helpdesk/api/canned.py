"""Canned responses for the "/" menu of the reply box: the company's and the employee's own."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.conversations import access, canned

from .common import me
from .schema import errors
from .views import validated


class CannedResponseOut(serializers.Serializer):
    id = serializers.IntegerField()
    shortcut = serializers.CharField(help_text=_("Typed after “/” in the reply box."))
    title = serializers.CharField()
    body = serializers.CharField(help_text=_("The text as saved, with its placeholders."))
    personal = serializers.BooleanField(help_text=_("Yours alone; it hides a company-wide one with the same shortcut."))
    text = serializers.CharField(
        allow_null=True,
        help_text=_("The text with the placeholders filled for conversation_id; null without one."),
    )


class CannedResponseListApi(APIView):
    class Query(serializers.Serializer):
        conversation_id = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(
        tags=["canned responses"],
        parameters=[
            OpenApiParameter(
                "conversation_id",
                {"type": "integer", "minimum": 1},
                description=_(
                    "Fill the placeholders ({{contact.name}}, {{contact.first_name}}, {{agent.name}}, "
                    "{{agent.first_name}}, {{company.name}}, …) for this conversation and for you."
                ),
            )
        ],
        responses={200: CannedResponseOut(many=True), **errors(400, 404)},
        description=_("The canned responses you may use, by shortcut: the company's and your own."),
    )
    def get(self, request):
        employee = me(request)
        query = validated(self.Query, request.query_params)
        values = None
        if "conversation_id" in query:
            conversation = access.get_conversation(employee, query["conversation_id"])
            values = canned.placeholder_values(contact=conversation.contact, agent=employee, company=employee.company)
        rows = [
            {
                "id": row.pk,
                "shortcut": row.shortcut,
                "title": row.title,
                "body": row.body,
                "personal": row.owner_id is not None,
                "text": canned.render(row.body, values) if values is not None else None,
            }
            for row in canned.available(employee)
        ]
        return Response(CannedResponseOut(rows, many=True).data)
