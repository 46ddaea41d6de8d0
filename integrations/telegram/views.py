"""Telegram's webhook: ``POST /hooks/telegram/<public_key>/`` with one Update as JSON.

The ``X-Telegram-Bot-Api-Secret-Token`` header must match the channel's webhook secret
(compared in constant time): otherwise 403 and nothing is stored. An unknown, disabled or
removed channel is a 404. A body that is not JSON, or longer than ``MAX_BODY_BYTES`` (judged
by its declared length first, never read past it), is logged and acknowledged (200): Telegram
would otherwise retry it for a day.
"""

from __future__ import annotations

import hmac
import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from helpdesk import safejson
from helpdesk.conversations.models import Channel, ChannelKind
from helpdesk.conversations.secrets import SecretsUnreadable

from . import inbound
from .setup import webhook_secret

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_000_000
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@csrf_exempt
@require_POST
def webhook(request: HttpRequest, public_key: str) -> HttpResponse:
    channel = Channel.objects.filter(
        public_key=public_key[:40], kind=ChannelKind.TELEGRAM, archived_at__isnull=True, removed_at__isnull=True
    ).first()
    if channel is None:
        return HttpResponse(status=404)
    try:
        expected = webhook_secret(channel)
    except SecretsUnreadable:
        log.error("telegram channel %s: its secrets can't be read; webhook refused", channel.pk)
        return HttpResponse(status=503)
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        log.warning("telegram channel %s: webhook call with a wrong or missing secret refused", channel.pk)
        return HttpResponse(status=403)
    body = safejson.read_body(request, MAX_BODY_BYTES)
    if body is None:
        log.warning("telegram channel %s: a webhook body over %s bytes ignored", channel.pk, MAX_BODY_BYTES)
        return HttpResponse(status=200)
    try:
        data = safejson.loads(body)
    except safejson.BadJSON as exc:
        log.warning("telegram channel %s: webhook body ignored: %s", channel.pk, exc)
        return HttpResponse(status=200)
    inbound.receive_update(channel, data)
    return HttpResponse(status=200)
