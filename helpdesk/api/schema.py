"""What the OpenAPI schema says about errors, shared by every endpoint's ``@extend_schema``."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailOut(serializers.Serializer):
    code = serializers.CharField(help_text=_("A stable, machine-readable code, e.g. not_found, invalid, archived."))
    message = serializers.CharField(help_text=_("Human-readable, in the language of the request."))
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text=_("For code invalid: the problems of each field (or query parameter) by name."),
    )


class ErrorOut(serializers.Serializer):
    error = ErrorDetailOut()


_MEANING = {
    400: _("The request is not valid (malformed JSON, a bad field or filter value, or a rule of the action)."),
    401: _("No valid API key or session: the key is malformed, unknown or revoked, or its owner is deactivated."),
    403: _("Signed in, but your role does not allow this."),
    404: _("No such object, or it belongs to another company or is outside what you may see."),
    409: _("The request contradicts what is stored, e.g. an Idempotency-Key reused for a different message."),
    413: _("The file is larger than the limit (code file_too_large)."),
    415: _("Files of this type are not accepted, judged by the content (code file_type_not_allowed)."),
    429: _("Too many requests for this API key or user: wait the seconds of the Retry-After header."),
}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses for ``@extend_schema(responses=...)``; 401 and 429 are always among them."""
    return {status: OpenApiResponse(ErrorOut, description=_MEANING[status]) for status in sorted({401, 429, *statuses})}


class AutoSchema(openapi.AutoSchema):
    """Names a view's nested serializer after its view (``SnoozeApi.Input``: ``SnoozeRequest``),
    and drops the ``Out`` of output serializers (``MessageOut``: ``Message``).

    Thin views each declare their own ``Input``; without this they would all be "Input".
    """

    def get_serializer_name(self, serializer, direction):
        outer, _dot, inner = type(serializer).__qualname__.rpartition(".")
        if outer and "<locals>" not in outer:
            # A request component gets "Request" appended (a PATCH one "Patched" prepended):
            # SnoozeApi.Input is "SnoozeRequest", EmployeeDetailApi.Input "PatchedEmployeeRequest".
            view = outer.rpartition(".")[2].removesuffix("Api").removesuffix("List").removesuffix("Detail")
            return view + ("" if inner == "Input" else inner)
        return super().get_serializer_name(serializer, direction).removesuffix("Out")
