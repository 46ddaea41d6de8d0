"""One error shape for the whole API: {"error": {"code": ..., "message": ..., "fields": ...}}.

Two ways in: DRF's exception handler for everything raised inside an API view, and the
project's ``handler400/403/404/500`` for what fails before a view runs (an unknown path, an
id that is not a number) or outside it. Under ``/api/`` those answer the same JSON shape;
elsewhere they are Django's own pages.
"""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from helpdesk import ratelimits
from helpdesk.errors import ActionError, ConflictError

API_PREFIX = "/api/"
# Seconds a client waits before sending again what the database could not take.
UNAVAILABLE_RETRY_AFTER = 2

log = logging.getLogger(__name__)


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def exception_handler(exc, context):
    if isinstance(exc, ratelimits.RateLimited):
        return Response(
            error_body(exc.code, exc.message),
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, ActionError):
        code = status.HTTP_409_CONFLICT if isinstance(exc, ConflictError) else status.HTTP_400_BAD_REQUEST
        return Response(error_body(exc.code, exc.message), status=code)
    if isinstance(exc, RequestDataTooBig):  # Django's limit on bodies (DATA_UPLOAD_MAX_MEMORY_SIZE)
        return Response(
            error_body("too_large", _("The request body is too large.")),
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, OperationalError | InterfaceError):
        # The database is away (restarting, no pooled connection in time): nothing was done.
        # A 503 the client may retry says so; a 500 would read as a bug in the request.
        log.warning("an API request failed: the database is unavailable", exc_info=True)
        return Response(
            error_body("unavailable", _("The service is briefly unavailable; try again.")),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        )
    if isinstance(exc, SuspiciousOperation):  # e.g. too many form fields; Django would answer an HTML 400
        return Response(error_body("bad_request", _("The request is malformed.")), status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    detail = response.data
    if isinstance(exc, exceptions.Throttled):
        # DRF's text counts the seconds in English; Retry-After (set by DRF) carries them.
        response.data = error_body("rate_limited", str(ratelimits.API_PER_USER.message))
    elif isinstance(detail, dict) and set(detail) == {"detail"}:
        code = getattr(detail["detail"], "code", "error")
        response.data = error_body(code, str(detail["detail"]))
    else:
        fields = field_errors(detail)
        response.data = {"error": {"code": "invalid", "message": _("Some fields are not valid."), "fields": fields}}
    return response


def field_errors(detail, name: str = "") -> dict[str, list[str]]:
    """DRF's nested validation errors, flat: each field's path to its messages.

    ``{"team_ids": {1: ["A valid integer is required."]}}`` becomes ``{"team_ids.1": [...]}``;
    errors that belong to no field are under ``non_field_errors``.
    """

    def path(key) -> str:
        return f"{name}.{key}" if name else str(key)

    if isinstance(detail, dict):
        return {
            key: messages for item, value in detail.items() for key, messages in field_errors(value, path(item)).items()
        }
    if not isinstance(detail, list):
        detail = [detail]
    flat: dict[str, list[str]] = {}
    here = [str(item) for item in detail if not isinstance(item, dict | list)]
    if here:
        flat[name or "non_field_errors"] = here
    for index, item in enumerate(detail):
        if isinstance(item, dict | list):
            flat.update(field_errors(item, path(index)))
    return flat


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(error_body("too_large", _("The request body is too large.")), status=413)
    return JsonResponse(error_body("bad_request", _("The request is malformed.")), status=400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.permission_denied(request, exception)
    return JsonResponse(error_body("permission_denied", _("You do not have permission to do this.")), status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not _is_api(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body("not_found", _("There is nothing at this address.")), status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    if not _is_api(request):
        return defaults.server_error(request)
    return JsonResponse(error_body("server_error", _("Something went wrong on our side.")), status=500)
