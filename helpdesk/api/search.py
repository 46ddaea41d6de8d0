"""Search through the API: the same search as the page, within what the caller may see."""

from __future__ import annotations

from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.conversations import search
from helpdesk.conversations.models import Direction, MessageKind, Status

from .schema import errors


class SegmentOut(serializers.Serializer):
    text = serializers.CharField()
    match = serializers.BooleanField(help_text=_("True for the words that matched the query."))


class FoundInOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Status.choices)
    contact_id = serializers.IntegerField()
    contact_name = serializers.CharField()


class MessageHitOut(serializers.Serializer):
    id = serializers.IntegerField()
    conversation = FoundInOut(help_text=_("The conversation the message is in."))
    direction = serializers.ChoiceField(choices=Direction.choices)
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    author_name = serializers.CharField()
    created_at = serializers.DateTimeField()
    snippet = SegmentOut(
        many=True, help_text=_("The text around the matches, in pieces; join the texts to get it plain.")
    )


class ContactHitOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.CharField()
    phone = serializers.CharField()
    latest_conversation_id = serializers.IntegerField()


class SearchOut(serializers.Serializer):
    messages = MessageHitOut(many=True, help_text=_("Newest first."))
    contacts = ContactHitOut(many=True, help_text=_("Only on the first page (without before)."))
    next = serializers.CharField(allow_null=True, help_text=_("The next (older) page of messages, or null."))


def _hit(hit: search.MessageHit) -> dict:
    m = hit.message
    conversation = m.conversation
    return {
        "id": m.pk,
        "conversation": {
            "id": conversation.pk,
            "status": conversation.status,
            "contact_id": conversation.contact_id,
            "contact_name": conversation.contact.display_name,
        },
        "direction": m.direction,
        "kind": m.kind,
        "author_name": m.author_name,
        "created_at": m.created_at,
        "snippet": [{"text": s.text, "match": s.match} for s in hit.segments],
    }


class SearchApi(APIView):
    class Input(serializers.Serializer):
        q = serializers.CharField(max_length=search.MAX_QUERY_LENGTH, help_text=_("What to look for."))
        before = serializers.IntegerField(
            min_value=1, required=False, help_text=_("Only messages older than this message id (the next page).")
        )
        limit = serializers.IntegerField(min_value=1, max_value=100, default=search.PAGE_SIZE)

    @extend_schema(
        tags=["search"],
        parameters=[Input],
        responses={200: SearchOut, **errors(400)},
        description=_(
            "Messages and internal notes (full-text, Russian and English word forms) and contacts "
            "(name, e-mail, phone) in the conversations the caller may open. Quoted phrases, "
            "`or` and `-word` work as in a web search; the last word also matches as a prefix."
        ),
    )
    def get(self, request):
        data = self.Input(data=request.query_params)
        data.is_valid(raise_exception=True)
        data = data.validated_data
        employee = request.user.employee
        try:
            page = search.messages(employee, data["q"], before=data.get("before"), limit=data["limit"])
            found = search.contacts(employee, data["q"]) if "before" not in data else []
        except search.SearchError as error:
            raise ValidationError({"q": [str(error)]}, code="invalid") from None
        more = None
        if page.next_before:
            query = urlencode({"q": data["q"], "before": page.next_before, "limit": data["limit"]})
            more = request.build_absolute_uri(f"{request.path}?{query}")
        contacts = [
            {
                "id": c.pk,
                "name": c.display_name,
                "email": c.email,
                "phone": c.phone,
                "latest_conversation_id": c.latest_conversation_id,
            }
            for c in found
        ]
        return Response({"messages": [_hit(h) for h in page.hits], "contacts": contacts, "next": more})
