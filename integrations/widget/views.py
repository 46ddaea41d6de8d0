"""The widget's HTTP side: start or resume a visitor session from a customer's site."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from helpdesk import safejson
from helpdesk.accounts.presence import team_online
from helpdesk.events.audit import client_ip
from helpdesk.ratelimits import RateLimited

from . import limits
from .visitors import WidgetError, check_origin, issue_token, read_token, visitor_history, widget_channel

MAX_BODY_BYTES = 4096


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type"
    response["Access-Control-Max-Age"] = "600"
    response["Access-Control-Expose-Headers"] = "Retry-After"
    response["Vary"] = "Origin"
    return response


def _refuse(exc: WidgetError, origin: str | None) -> HttpResponse:
    response = JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)
    # A refusal for an allowed origin is still readable by the widget (e.g. an expired token).
    return _cors(response, origin) if origin and exc.code not in ("origin_denied", "origin_missing") else response


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def session(request: HttpRequest, public_key: str) -> HttpResponse:
    """Start a visitor session, or resume one from its token: history, presence, settings."""
    raw_origin = request.headers.get("Origin")
    try:
        channel = widget_channel(public_key)
        origin = check_origin(channel, raw_origin)
    except WidgetError as exc:
        return _refuse(exc, None)
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), raw_origin)
    try:
        if len(request.body) > MAX_BODY_BYTES:
            raise WidgetError(_("The request is too large."), status=413, code="too_large")
        try:
            data = safejson.loads(request.body or b"{}")
        except safejson.BadJSON:
            raise WidgetError(_("The request body is not valid JSON."), status=400, code="bad_json") from None
        if not isinstance(data, dict):
            raise WidgetError(_("The request body must be a JSON object."), status=400, code="bad_json")
        token = data.get("token")
        if token is not None and not isinstance(token, str):
            raise WidgetError(_("The token must be a string."), status=400, code="bad_token")
        if token:
            visitor_id = read_token(channel, token)
            limits.count_resumed_session(channel, visitor_id, client_ip(request))
        else:
            limits.count_new_session(client_ip(request))
            token, visitor_id = issue_token(channel)
    except WidgetError as exc:
        return _refuse(exc, raw_origin)
    except RateLimited as exc:
        return _cors(exc.response(), origin)
    settings = channel.settings
    body = {
        "token": token,
        "messages": visitor_history(channel, visitor_id),
        "online": team_online(channel.company_id, channel.team_id),
        "settings": {
            "title": settings.get("title") or channel.company.name,
            "greeting": settings.get("greeting") or "",
            "color": settings.get("color") or "#4f46e5",
            "max_chars": django_settings.MESSAGE_MAX_CHARS,
        },
    }
    return _cors(JsonResponse(body), origin)
