"""VK's Callback API: ``POST /hooks/vk/<public_key>/``, the address the channel's page shows.

- ``confirmation`` for this channel's community → the confirmation code, as plain text
  (VK sends it with or without the secret).
- Any other event must carry the channel's secret (compared in constant time) and its
  community's id, else 403 and nothing is stored. A disabled, removed or unknown channel: 404.
- A valid event is stored (once: VK's retries carry the same message, whose external_id
  makes a replay a no-op) and answered ``ok``. A malformed or unhandled one is answered
  ``ok`` too, so VK does not retry garbage, with one line in the log.
"""

from __future__ import annotations

import hmac
import logging

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from helpdesk import safejson
from helpdesk.conversations.models import Channel, ChannelKind
from helpdesk.conversations.secrets import SecretsUnreadable
from helpdesk.errors import ActionError

from . import inbound

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


def _ok() -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def _channel(public_key: str) -> Channel:
    channel = Channel.objects.filter(
        public_key=public_key, kind=ChannelKind.VK, archived_at__isnull=True, removed_at__isnull=True
    ).first()
    if channel is None or channel.settings.get("mode") != "callback":
        raise Http404
    return channel


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


@csrf_exempt
@require_POST
def callback(request: HttpRequest, public_key: str) -> HttpResponse:
    channel = _channel(public_key)
    body = safejson.read_body(request, MAX_BODY_BYTES)
    if body is None:
        log.info("vk channel %s: a callback body over %s bytes ignored", channel.pk, MAX_BODY_BYTES)
        return _ok()
    try:
        event = safejson.loads(body)
    except safejson.BadJSON:
        log.info("vk channel %s: a callback that is not JSON ignored", channel.pk)
        return _ok()
    if not isinstance(event, dict):
        log.info("vk channel %s: a callback that is not an object ignored", channel.pk)
        return _ok()
    group_id = channel.settings.get("group_id")
    if event.get("group_id") != group_id or isinstance(event.get("group_id"), bool):
        return HttpResponseForbidden("wrong community", content_type="text/plain")
    try:
        secrets = channel.secret_values()
    except SecretsUnreadable:
        # Our fault, not VK's: answer so that VK tries again later, once the key is back.
        log.error("vk channel %s: its credentials can't be read; callback refused", channel.pk)
        return HttpResponse("unavailable", status=503, content_type="text/plain")
    if event.get("type") == "confirmation":
        if "secret" in event and not _same(event["secret"], secrets.get("secret", "")):
            return HttpResponseForbidden("wrong secret", content_type="text/plain")
        return HttpResponse(channel.settings.get("confirmation", ""), content_type="text/plain")
    if not _same(event.get("secret"), secrets.get("secret", "")):
        log.info("vk channel %s: a callback with a wrong secret refused", channel.pk)
        return HttpResponseForbidden("wrong secret", content_type="text/plain")
    try:
        inbound.receive(channel, event)
    except ActionError as exc:
        log.info("vk channel %s: a message was not stored (%s)", channel.pk, exc.code)
    return _ok()
