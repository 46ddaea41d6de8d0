"""Personal API tokens: each employee lists, creates and revokes their own, and nobody else's.

Creating a token needs the signed-in session, not another token: otherwise a leaked key
could mint fresh keys and outlive its own revocation.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import ApiToken
from helpdesk.conversations import access

from .common import GatedListApi, me
from .filters import BoolFilter, StrictFilterSet
from .schema import errors
from .views import validated

TAGS = ["tokens"]


class TokenOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text=_("The public part of the key: sc_<prefix>_…"))
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True, help_text=_("Updated at most once a minute."))
    revoked_at = serializers.DateTimeField(allow_null=True)
    active = serializers.BooleanField()


class TokenCreatedOut(TokenOut):
    key = serializers.CharField(help_text=_("The full key. It is shown this once and never again: store it now."))


class TokenFilter(StrictFilterSet):
    active = BoolFilter(field_name="revoked_at", lookup_expr="isnull")

    class Meta:
        model = ApiToken
        fields = ["active"]


class TokenListApi(GatedListApi):
    model = ApiToken
    serializer_class = TokenOut
    filterset_class = TokenFilter

    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100, help_text=_("What it is for, e.g. CRM sync."))

    def rows(self, employee):
        return access.own_api_tokens(employee).order_by("-created_at", "-pk")

    @extend_schema(tags=TAGS, responses={200: TokenOut(many=True), **errors(400)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=TAGS,
        request=Input,
        responses={201: TokenCreatedOut, **errors(400, 403)},
        description=_("Create a personal API key. Needs a signed-in session: a token can't create tokens."),
    )
    def post(self, request):
        if isinstance(request.auth, ApiToken):
            raise exceptions.PermissionDenied(
                _("API tokens are created in the browser, signed in, not with another token."), code="session_required"
            )
        data = validated(self.Input, request.data)
        token, key = admin_actions.create_api_token(by=me(request), name=data["name"])
        return Response({**TokenOut(token).data, "key": key}, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    @extend_schema(tags=TAGS, responses={200: TokenOut, **errors(404)})
    def get(self, request, token_id: int):
        return Response(TokenOut(access.get_own_api_token(me(request), token_id)).data)

    @extend_schema(
        tags=TAGS,
        responses={204: None, **errors(404)},
        description=_("Revoke the token (it is kept, marked revoked, and stops working at once)."),
    )
    def delete(self, request, token_id: int):
        token = access.get_own_api_token(me(request), token_id)
        admin_actions.revoke_api_token(token, by=me(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenRevokeApi(APIView):
    @extend_schema(
        tags=TAGS,
        operation_id="tokens_revoke",
        request=None,
        responses={200: TokenOut, **errors(404)},
        description=_("The same as DELETE on the token, answering with the revoked token."),
    )
    def post(self, request, token_id: int):
        token = access.get_own_api_token(me(request), token_id)
        token = admin_actions.revoke_api_token(token, by=me(request))
        return Response(TokenOut(token).data)
