"""Channels: list, add, read and change them; holders of manage_channels only.

A channel's own settings are its kind's (the adapter's settings form validates them, the same
form Settings shows); this module lists every registered kind's fields, flat, in the request
schema. Credentials are write-only: the answer shows them masked (``••••1234``).
"""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.actions.channels import CSAT_QUESTION_LIMIT, GREETING_LIMIT
from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access, adapters, secrets
from helpdesk.conversations.models import Channel, ChannelKind

from .common import GatedListApi, me
from .filters import StrictFilterSet
from .schema import errors
from .views import validated

TAGS = ["channels"]
COMMON = ("kind", "name", "team", "greeting", "csat", "csat_question", "enabled")
# Every channel's own settings, shown apart from the kind's.
OWN_SETTINGS = ("greeting", "csat", "csat_question")
CSAT_HELP = _("Ask the customer to rate each resolved conversation from 1 to 5 (CSAT; docs/csat.md).")
CSAT_QUESTION_HELP = _("The survey's question; empty: the default one, in the customer's language.")


def _api_field(form_field: forms.Field, *, label: str, secret: bool) -> serializers.Field:
    """The API's view of one settings-form field: same type, limits and choices; never required
    here (the kind's form says what its kind requires)."""
    options: dict[str, Any] = {"required": False, "help_text": f"{label}: {form_field.help_text or form_field.label}"}
    if secret:
        options["write_only"] = True
    if isinstance(form_field, forms.ChoiceField):
        return serializers.ChoiceField(choices=list(form_field.choices), **options)
    if isinstance(form_field, forms.BooleanField):
        return serializers.BooleanField(**options)
    if isinstance(form_field, forms.IntegerField):
        return serializers.IntegerField(min_value=form_field.min_value, max_value=form_field.max_value, **options)
    if getattr(form_field, "many", False):
        return serializers.ListField(child=serializers.CharField(max_length=300), max_length=100, **options)
    max_length = getattr(form_field, "max_length", None) or 1000
    return serializers.CharField(max_length=max_length, allow_blank=True, trim_whitespace=False, **options)


def kind_fields() -> dict[str, serializers.Field]:
    """Every registered kind's settings fields; a name two kinds share (``mode``) takes both's choices."""
    fields: dict[str, serializers.Field] = {}
    choices: dict[str, list] = {}
    for adapter in adapters.adapters():
        for name, form_field in adapter.setup.form.base_fields.items():
            if isinstance(form_field, forms.ChoiceField):
                choices.setdefault(name, []).extend(c for c in form_field.choices if c not in choices.get(name, []))
            if name in fields:
                continue
            fields[name] = _api_field(form_field, label=str(adapter.label), secret=name in adapter.secret_fields)
    for name, merged in choices.items():
        labels = " / ".join(str(a.label) for a in adapters.adapters() if name in a.setup.form.base_fields)
        write_only = fields[name].write_only
        fields[name] = serializers.ChoiceField(
            choices=merged, required=False, write_only=write_only, help_text=f"{labels}: {fields[name].help_text}"
        )
    return fields


def mode_choices() -> list:
    """The merged choices of the kinds' ``mode`` setting: named ChannelModeEnum in the schema
    (settings.SPECTACULAR_SETTINGS), apart from the statistics' heatmap ``mode``."""
    field = kind_fields().get("mode")
    return list(field.choices.items()) if isinstance(field, serializers.ChoiceField) else []


def _kind_values(data: dict[str, Any], kind: str, channel: Channel | None = None) -> dict[str, Any] | None:
    """The kind's settings from a request, through its form; None when a PATCH names none of them."""
    names = admin_actions.settings_form(kind).fields
    given = {key: value for key, value in data.items() if key in names}
    if channel is not None:
        if not given:
            return None
        given = {**{k: v for k, v in channel.settings.items() if k in names}, **given}
    try:
        return admin_actions.clean_settings(kind, given, channel=channel)
    except admin_actions.ChannelSettingsInvalid as invalid:
        raise ValidationError(
            {("non_field_errors" if key == "__all__" else key): messages for key, messages in invalid.errors.items()}
        ) from None


class ChannelOut(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    name = serializers.CharField()
    team = serializers.IntegerField(source="team_id", allow_null=True)
    greeting = serializers.SerializerMethodField()
    csat = serializers.SerializerMethodField(help_text=CSAT_HELP)
    csat_question = serializers.SerializerMethodField(help_text=CSAT_QUESTION_HELP)
    enabled = serializers.BooleanField()
    settings = serializers.SerializerMethodField(
        help_text=_("The kind's settings, without its credentials (for example mode, allowed_origins).")
    )
    credentials = serializers.SerializerMethodField(
        help_text=_("Each saved credential, masked: ••••1234. The values are never shown.")
    )
    provider_url = serializers.SerializerMethodField(
        help_text=_("The address to give the provider in webhook and Callback API modes; otherwise null.")
    )
    created_at = serializers.DateTimeField()

    def get_greeting(self, channel: Channel) -> str:
        return channel.settings.get("greeting", "")

    @extend_schema_field(serializers.BooleanField())
    def get_csat(self, channel: Channel) -> bool:
        return bool(channel.settings.get("csat"))

    @extend_schema_field(serializers.CharField())
    def get_csat_question(self, channel: Channel) -> str:
        return channel.settings.get("csat_question", "")

    def get_settings(self, channel: Channel) -> dict[str, Any]:
        return {key: value for key, value in channel.settings.items() if key not in OWN_SETTINGS}

    def get_credentials(self, channel: Channel) -> dict[str, str]:
        try:
            stored = channel.secret_values()
        except secrets.SecretsUnreadable:
            return {}
        return {key: secrets.mask(value) for key, value in stored.items()}

    def get_provider_url(self, channel: Channel) -> str | None:
        request = self.context["request"]
        base = settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")
        return adapters.adapter_for(channel.kind).setup.provider_url(channel, base_url=base)


def channels(viewer: Employee) -> QuerySet[Channel]:
    access.require(viewer, Perm.MANAGE_CHANNELS)
    return access.company_channels(viewer).select_related("team").order_by("name", "pk")


def channel_data(request, channel: Channel) -> dict:
    channel = channels(me(request)).get(pk=channel.pk)
    return ChannelOut(channel, context={"request": request}).data


class ChannelFilter(StrictFilterSet):
    kind = django_filters.ChoiceFilter(field_name="kind", choices=ChannelKind.choices)

    class Meta:
        model = Channel
        fields = ["kind"]


class ChannelInput(serializers.Serializer):
    # Every kind the model knows; one without a registered adapter is refused (400, bad_kind).
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    name = serializers.CharField(max_length=100)
    team = serializers.IntegerField(required=False, allow_null=True, help_text=_("The team new conversations go to."))
    greeting = serializers.CharField(required=False, allow_blank=True, max_length=GREETING_LIMIT)
    csat = serializers.BooleanField(required=False, help_text=CSAT_HELP)
    csat_question = serializers.CharField(
        required=False, allow_blank=True, max_length=CSAT_QUESTION_LIMIT, help_text=CSAT_QUESTION_HELP
    )

    def get_fields(self):
        return {**super().get_fields(), **kind_fields()}


class ChannelPatch(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    team = serializers.IntegerField(required=False, allow_null=True)
    greeting = serializers.CharField(required=False, allow_blank=True, max_length=GREETING_LIMIT)
    csat = serializers.BooleanField(required=False, help_text=CSAT_HELP)
    csat_question = serializers.CharField(
        required=False, allow_blank=True, max_length=CSAT_QUESTION_LIMIT, help_text=CSAT_QUESTION_HELP
    )
    enabled = serializers.BooleanField(required=False, help_text=_("false disables the channel, true enables it."))

    def get_fields(self):
        return {**super().get_fields(), **kind_fields()}


class ChannelListApi(GatedListApi):
    model = Channel
    serializer_class = ChannelOut
    filterset_class = ChannelFilter

    def rows(self, employee):
        return channels(employee)

    @extend_schema(tags=TAGS, responses={200: ChannelOut(many=True), **errors(400, 403)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        request=ChannelInput,
        responses={201: ChannelOut, **errors(400, 403, 404)},
        description=_(
            "Add a channel: kind, name, team, greeting, the survey (csat, csat_question) and the kind's "
            "settings. Telegram: bot_token and "
            "mode (polling or webhook). VK: group_id, access_token, mode (longpoll or callback) and, for "
            "callback, secret and confirmation. Widget: allowed_origins, title, color. The credentials are "
            "checked with the provider first; refused ones are a 400 (code bad_credentials) and nothing "
            "is saved."
        ),
    )
    def post(self, request):
        by = me(request)
        access.require(by, Perm.MANAGE_CHANNELS)
        data = validated(ChannelInput, request.data)
        team = access.get_team(by, data["team"]) if data.get("team") is not None else None
        values = _kind_values(data, data["kind"])
        channel = admin_actions.add_channel(
            by=by,
            kind=data["kind"],
            name=data["name"],
            team=team,
            greeting=data.get("greeting", ""),
            csat=data.get("csat", False),
            csat_question=data.get("csat_question", ""),
            values=values,
        )
        return Response(channel_data(request, channel), status=status.HTTP_201_CREATED)


class ChannelDetailApi(APIView):
    @extend_schema(tags=TAGS, responses={200: ChannelOut, **errors(403, 404)})
    def get(self, request, channel_id: int):
        by = me(request)
        access.require(by, Perm.MANAGE_CHANNELS)
        return Response(ChannelOut(access.get_channel(by, channel_id), context={"request": request}).data)

    @extend_schema(
        tags=TAGS,
        request=ChannelPatch,
        responses={200: ChannelOut, **errors(400, 403, 404)},
        description=_(
            "Change a channel: name, team, greeting, csat, csat_question, enabled, and any of its kind's "
            "settings (the others "
            "keep their values; a credential left out keeps the saved one). Changed credentials are "
            "checked with the provider first."
        ),
    )
    def patch(self, request, channel_id: int):
        by = me(request)
        access.require(by, Perm.MANAGE_CHANNELS)
        channel = access.get_channel(by, channel_id)
        data = validated(ChannelPatch, request.data)
        common = ("name", "greeting", "csat", "csat_question")
        changes: dict[str, Any] = {key: data[key] for key in common if key in data}
        if "team" in data:
            changes["team"] = access.get_team(by, data["team"]) if data["team"] is not None else None
        values = _kind_values(data, channel.kind, channel)
        if values is not None:
            changes["values"] = values
        if changes:
            channel = admin_actions.update_channel(channel, by=by, **changes)
        if "enabled" in data and data["enabled"] != channel.enabled:
            write = admin_actions.enable_channel if data["enabled"] else admin_actions.disable_channel
            channel = write(channel, by=by)
        return Response(channel_data(request, channel))
