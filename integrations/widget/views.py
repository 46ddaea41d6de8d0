"""The widget's HTTP side, called from a customer's site: start or resume a visitor session,
and upload a file the visitor is about to send."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from helpdesk import safejson
from helpdesk.accounts.presence import team_online
from helpdesk.conversations.attachments import human_size
from helpdesk.errors import ActionError
from helpdesk.events.audit import client_ip
from helpdesk.ratelimits import RateLimited

from . import inbound, limits
from .visitors import WidgetError, check_origin, issue_token, read_token, visitor_history, widget_channel

MAX_BODY_BYTES = 4096
# What multipart adds around an uploaded file (boundaries, headers, the file's name).
MULTIPART_SLACK = 64 * 1024
# How each refused file is answered: too large, a type not accepted; anything else is 400.
UPLOAD_STATUS = {"file_too_large": 413, "file_type_not_allowed": 415}


def _cors(response: HttpResponse, origin: str) -> HttpResponse:
    response["Access-Control-Allow-Origin"] = origin
    response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    response["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
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
        body = safejson.read_body(request, MAX_BODY_BYTES)
        if body is None:
            raise WidgetError(_("The request is too large."), status=413, code="too_large")
        try:
            data = safejson.loads(body or b"{}")
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
        # The satisfaction survey still open to this visitor, shown inline again after a reload.
        "survey": inbound.open_survey(channel, visitor_id),
        "online": team_online(channel.company_id, channel.team_id),
        "settings": {
            "title": settings.get("title") or channel.company.name,
            "greeting": settings.get("greeting") or "",
            "color": settings.get("color") or "#4f46e5",
            "max_chars": django_settings.MESSAGE_MAX_CHARS,
            # The widget checks these before uploading; the server checks again, by content.
            "files": {
                "max_bytes": django_settings.ATTACHMENT_MAX_BYTES,
                "max_count": django_settings.ATTACHMENTS_PER_MESSAGE,
                "types": [pattern for pattern in django_settings.ATTACHMENT_TYPES if "?" not in pattern],
            },
        },
    }
    return _cors(JsonResponse(body), origin)


def _bearer(request: HttpRequest) -> str:
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise WidgetError(_("Your chat session is not valid."), status=401, code="token_invalid")
    return token.strip()


def _upload_length(request: HttpRequest) -> int:
    """The body's declared length: an upload says how long it is, and is never past the limit."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        raise WidgetError(_("The upload must say how long it is."), status=411, code="length_required") from None
    limit = django_settings.ATTACHMENT_MAX_BYTES
    if length > limit + MULTIPART_SLACK:
        raise WidgetError(
            _("The file is too large: files can be at most %(limit)s.") % {"limit": human_size(limit)},
            status=413,
            code="file_too_large",
        )
    return length


def _one_file(request: HttpRequest):
    try:
        files = request.FILES.getlist("file")
    except (MultiPartParserError, RequestDataTooBig, TooManyFilesSent, TooManyFieldsSent, SuspiciousOperation):
        raise WidgetError(_("The upload could not be read."), status=400, code="bad_upload") from None
    if len(files) != 1 or sum(len(group) for _name, group in request.FILES.lists()) != 1:
        raise WidgetError(
            _("Send one file per upload, in a multipart form field named “file”."), status=400, code="bad_upload"
        )
    return files[0]


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def upload(request: HttpRequest, public_key: str) -> HttpResponse:
    """Keep a file the visitor is about to send (multipart ``file``; the visitor's token as
    ``Authorization: Bearer``); the message frame that carries it names its ``id``.

    Refusals: 401 a bad token, 411 no length, 413 too large, 415 a type not accepted, 400
    anything else that isn't one readable file, 429 too many uploads. They come in the
    visitor's language (``Accept-Language``). Nothing is read before the token and the rate
    limit are checked, and a refused file stores nothing.
    """
    raw_origin = request.headers.get("Origin")
    try:
        channel = widget_channel(public_key)
        origin = check_origin(channel, raw_origin)
    except WidgetError as exc:
        return _refuse(exc, None)
    if request.method == "OPTIONS":
        return _cors(HttpResponse(status=204), raw_origin)
    try:
        visitor_id = read_token(channel, _bearer(request))
        limits.count_upload(channel, visitor_id, client_ip(request))
        _upload_length(request)
        file = _one_file(request)
        attachment = inbound.upload(channel, visitor_id, stream=file, name=file.name or "", size=file.size)
    except WidgetError as exc:
        return _refuse(exc, raw_origin)
    except RateLimited as exc:
        return _cors(exc.response(), origin)
    except ActionError as exc:
        status = UPLOAD_STATUS.get(exc.code, 400)
        return _cors(JsonResponse({"error": {"code": exc.code, "message": exc.message}}, status=status), origin)
    body = {
        "id": attachment.pk,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "image": attachment.is_image,
    }
    return _cors(JsonResponse(body, status=201), origin)
