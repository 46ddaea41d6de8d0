"""One error shape for the whole API: {"error": {"code": ..., "message": ..., "fields": ...}}."""

from __future__ import annotations

from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from helpdesk import ratelimits
from helpdesk.errors import ActionError


def exception_handler(exc, context):
    if isinstance(exc, ratelimits.RateLimited):
        return Response(
            {"error": {"code": exc.code, "message": exc.message}},
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, ActionError):
        return Response({"error": {"code": exc.code, "message": exc.message}}, status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(exc, exceptions.Throttled):
        # DRF's text counts the seconds in English; Retry-After (set by DRF) carries them.
        response.data = {"error": {"code": "rate_limited", "message": str(ratelimits.API_PER_USER.message)}}
    elif isinstance(detail, dict) and set(detail) == {"detail"}:
        code = getattr(detail["detail"], "code", "error")
        response.data = {"error": {"code": code, "message": str(detail["detail"])}}
    else:
        response.data = {"error": {"code": "invalid", "message": _("Some fields are not valid."), "fields": detail}}
    return response
