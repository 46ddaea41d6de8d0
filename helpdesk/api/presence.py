"""One's own presence: online, away or offline (the top bar's menu uses the page's twin)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import Presence

from .common import me
from .schema import errors
from .views import validated


class PresenceOut(serializers.Serializer):
    employee_id = serializers.IntegerField()
    presence = serializers.ChoiceField(
        choices=Presence.choices,
        help_text=_("What you chose. Colleagues see online as away while no inbox tab of yours is open."),
    )


def presence_data(employee) -> dict:
    return {"employee_id": employee.pk, "presence": employee.presence}


class PresenceApi(APIView):
    class Input(serializers.Serializer):
        presence = serializers.ChoiceField(choices=Presence.choices)

    @extend_schema(tags=["employees"], responses={200: PresenceOut, **errors()})
    def get(self, request):
        return Response(presence_data(me(request)))

    @extend_schema(
        tags=["employees"],
        request=Input,
        responses={200: PresenceOut, **errors(400)},
        description=_(
            "Set your presence. Online: automatic assignment may give you conversations (the queue is "
            "handed out at once); away and offline: it gives you none. Every change is recorded."
        ),
    )
    def post(self, request):
        data = validated(self.Input, request.data)
        employee = admin_actions.set_presence(me(request), presence=data["presence"])
        return Response(presence_data(employee))
