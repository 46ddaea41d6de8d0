"""Contacts: the customers behind the conversations, as far as the employee's scope reaches.

A role that sees all conversations sees every contact of the company; a narrower scope sees
the contacts of the conversations it can see (``access.visible_contacts``).
"""

from __future__ import annotations

import django_filters
from django.db.models import Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.functional import lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access, actions, csat
from helpdesk.conversations.consents import consent_list
from helpdesk.conversations.models import ChannelKind, ConsentDecision, Contact, ContactIdentity

from .common import GatedListApi, me
from .filters import StrictFilterSet
from .schema import errors
from .serializers import RatingOut
from .views import validated

TAGS = ["contacts"]


def _attributes_help() -> str:
    return gettext(
        "Your own fields: up to %(keys)s names (1 to %(key_chars)s characters) with a text (up to "
        "%(value_chars)s characters), a number, true, false or null; %(kb)s KB at most together."
    ) % {
        "keys": actions.CONTACT_ATTRIBUTES_MAX_KEYS,
        "key_chars": actions.CONTACT_ATTRIBUTE_KEY_MAX_CHARS,
        "value_chars": actions.CONTACT_ATTRIBUTE_VALUE_MAX_CHARS,
        "kb": actions.CONTACT_ATTRIBUTES_MAX_BYTES // 1024,
    }


ATTRIBUTES_SCHEMA = {
    "type": "object",
    "additionalProperties": {
        "nullable": True,
        "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}],
    },
    # Translated when the schema is rendered, in the reader's language.
    "description": lazy(_attributes_help, str)(),
}


@extend_schema_field(ATTRIBUTES_SCHEMA)
class AttributesField(serializers.JSONField):
    """Any JSON here; ``actions.update_contact`` checks the shape and the size."""


class ContactOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text=_("The name the contact gave; may be empty."))
    email = serializers.CharField()
    phone = serializers.CharField()
    attributes = AttributesField()
    created_at = serializers.DateTimeField()


class IdentityOut(serializers.Serializer):
    channel_id = serializers.IntegerField()
    channel_kind = serializers.ChoiceField(source="channel.kind", choices=ChannelKind.choices)
    channel_name = serializers.CharField(source="channel.name")
    external_id = serializers.CharField(help_text=_("The contact's id on that channel (visitor, chat, address)."))
    created_at = serializers.DateTimeField()


class ConsentOut(serializers.Serializer):
    channel_id = serializers.IntegerField()
    channel_name = serializers.CharField()
    decision = serializers.ChoiceField(choices=ConsentDecision.choices)
    text_version = serializers.CharField(help_text=_("The version of the channel's consent text they were shown."))
    at = serializers.DateTimeField()


class ContactDetailOut(ContactOut):
    blocked = serializers.BooleanField(
        source="is_blocked", help_text=_("Their messages are kept but open nothing and notify nobody.")
    )
    blocked_until = serializers.SerializerMethodField(help_text=_("When the block ends; null: until unblocked."))
    blocked_reason = serializers.SerializerMethodField()
    blocked_by_name = serializers.SerializerMethodField(help_text=_("Who blocked them; null when not blocked."))
    identities = IdentityOut(many=True)
    consents = serializers.SerializerMethodField(
        help_text=_("Each channel's newest decision about its consent to personal-data processing, newest first.")
    )
    conversation_ids = serializers.ListField(
        child=serializers.IntegerField(),
        source="visible_conversation_ids",
        help_text=_("Their conversations that you may see, most recent activity first."),
    )

    ratings = serializers.SerializerMethodField(
        help_text=_("Their ratings (CSAT) in conversations you may see, newest first (at most 20).")
    )

    @extend_schema_field(RatingOut(many=True))
    def get_ratings(self, contact: Contact) -> list[dict]:
        return getattr(contact, "visible_ratings", [])

    @extend_schema_field(ConsentOut(many=True))
    def get_consents(self, contact: Contact) -> list[dict]:
        return consent_list(contact)

    # A block that has run out reads as none.
    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_blocked_until(self, contact: Contact):
        return contact.blocked_until.isoformat() if contact.is_blocked() and contact.blocked_until else None

    @extend_schema_field(serializers.CharField())
    def get_blocked_reason(self, contact: Contact) -> str:
        return contact.blocked_reason if contact.is_blocked() else ""

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_blocked_by_name(self, contact: Contact) -> str | None:
        return contact.blocked_by.display_name if contact.is_blocked() and contact.blocked_by_id else None


def contact_detail(request, contact_id: int) -> dict:
    viewer = me(request)
    identities = ContactIdentity.objects.select_related("channel").order_by("pk")
    contacts = (
        access.visible_contacts(viewer)
        .select_related("blocked_by")
        .prefetch_related(Prefetch("identities", queryset=identities))
    )
    contact = get_object_or_404(contacts, pk=contact_id)  # the gate's rows: another company's id is a 404
    contact.visible_conversation_ids = list(
        access.visible_conversations(viewer)
        .filter(contact=contact)
        .order_by("-last_activity_at", "-pk")
        .values_list("pk", flat=True)
    )
    contact.visible_ratings = csat.contact_ratings(viewer, contact.pk)
    return ContactDetailOut(contact).data


class ContactFilter(StrictFilterSet):
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact", max_length=254)
    phone = django_filters.CharFilter(field_name="phone", max_length=40)
    search = django_filters.CharFilter(
        method="filter_search", max_length=100, help_text=_("Part of the name, e-mail address or phone number.")
    )

    class Meta:
        model = Contact
        fields = ["email", "phone", "search"]

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(name__icontains=value) | Q(email__icontains=value) | Q(phone__icontains=value))


class ContactListApi(GatedListApi):
    model = Contact
    serializer_class = ContactOut
    filterset_class = ContactFilter

    def rows(self, employee: Employee) -> QuerySet[Contact]:
        return access.visible_contacts(employee).order_by("-created_at", "-pk")

    @extend_schema(tags=TAGS, responses={200: ContactOut(many=True), **errors(400)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ContactDetailApi(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        email = serializers.CharField(max_length=254, required=False, allow_blank=True)
        phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
        attributes = AttributesField(required=False, help_text=_("Replaces all of the contact's attributes."))

    @extend_schema(tags=TAGS, responses={200: ContactDetailOut, **errors(404)})
    def get(self, request, contact_id: int):
        return Response(contact_detail(request, contact_id))

    @extend_schema(
        tags=TAGS,
        request=Input,
        responses={200: ContactDetailOut, **errors(400, 403, 404)},
        description=_("Correct a contact's name, e-mail, phone or attributes (manage_contacts)."),
    )
    def patch(self, request, contact_id: int):
        by = me(request)
        access.require(by, Perm.MANAGE_CONTACTS)
        contact = access.get_contact(by, contact_id)
        data = validated(self.Input, request.data)
        actions.update_contact(contact, by=by, **data)
        return Response(contact_detail(request, contact.pk))


class ContactBlockApi(APIView):
    class Input(serializers.Serializer):
        until = serializers.DateTimeField(
            allow_null=True, required=False, help_text=_("When the block ends; null or absent: until unblocked.")
        )
        reason = serializers.CharField(max_length=actions.BLOCK_REASON_MAX_CHARS, allow_blank=True)

    @extend_schema(
        tags=TAGS,
        request=Input,
        responses={200: ContactDetailOut, **errors(400, 403, 404)},
        description=_(
            "Block a contact (block_contacts): their messages are still stored, but open no conversation, "
            "notify nobody and are not routed, until the block ends or is lifted."
        ),
    )
    def post(self, request, contact_id: int):
        by = me(request)
        access.require(by, Perm.BLOCK_CONTACTS)
        contact = access.get_contact(by, contact_id)
        data = validated(self.Input, request.data)
        actions.block_contact(contact, by=by, until=data.get("until"), reason=data["reason"])
        return Response(contact_detail(request, contact.pk))


class ContactUnblockApi(APIView):
    @extend_schema(tags=TAGS, request=None, responses={200: ContactDetailOut, **errors(403, 404)})
    def post(self, request, contact_id: int):
        by = me(request)
        access.require(by, Perm.BLOCK_CONTACTS)
        contact = access.get_contact(by, contact_id)
        actions.unblock_contact(contact, by=by)
        return Response(contact_detail(request, contact.pk))
