"""Sending one delivery to a VK user or chat: ``messages.send`` with ``random_id``.

``random_id`` is the delivery's ``idempotency_key``, the same for every attempt, so VK drops
a repeat (a retry after a lost answer, a resend after the worker died): a message never
posts twice. Failures become ``DeliveryError``s; their text is VK's code and words, never
the token (``ApiError`` carries the request's parameters, so its own text is not used).
"""

from __future__ import annotations

import requests
import vk_api
from django.utils.translation import gettext as _

from helpdesk.accounts import actions as account_actions
from helpdesk.conversations.adapters import DeliveryError
from helpdesk.conversations.models import ContactIdentity

from .client import open_session

AUTH_FAILED, TOO_MANY_REQUESTS, FLOOD_CONTROL, INTERNAL = 5, 6, 9, 10
RETRYABLE = {1: None, TOO_MANY_REQUESTS: 1.0, FLOOD_CONTROL: 30.0, INTERNAL: None}  # code -> retry_after
# Everything else VK answers is about this request, this token or this user (5 bad token,
# 7/15 no access, 901 the user did not allow messages, 100 a bad parameter): trying again
# changes nothing, so it fails at once and the agent sees why.


def peer_id(delivery) -> int:
    """Where the conversation lives on VK: the contact's (or the chat's) peer_id."""
    identity = ContactIdentity.objects.filter(
        channel_id=delivery.channel_id, contact_id=delivery.conversation.contact_id
    ).first()
    if identity is None or not identity.external_id.lstrip("-").isdigit():
        raise DeliveryError(_("This conversation has no VK recipient."), permanent=True)
    return int(identity.external_id)


def send(delivery) -> str:
    try:
        token = delivery.channel.secret_values()["access_token"]
    except Exception:  # unreadable secrets: a person must fix the channel's settings
        raise DeliveryError(_("The channel's access token can't be read."), permanent=True) from None
    vk = open_session(token)  # this worker thread's, kept: its connection is reused
    vk.error_handlers.pop(TOO_MANY_REQUESTS, None)  # vk-api would sleep and repeat error 6 forever
    params = {"peer_id": peer_id(delivery), "message": delivery.message.body, "random_id": delivery.idempotency_key}
    try:
        return str(vk.method("messages.send", params))
    except vk_api.exceptions.ApiError as error:
        words = f"VK error {error.code}: {str(error.error.get('error_msg', ''))[:300]}"
        if error.code in RETRYABLE:
            raise DeliveryError(words, permanent=False, retry_after=RETRYABLE[error.code]) from None
        if error.code == AUTH_FAILED:  # the token was revoked: the channel is broken, admins are told (once)
            account_actions.mark_channel_broken(delivery.channel, reason=words)
        raise DeliveryError(words, permanent=True) from None
    except vk_api.exceptions.ApiHttpError as error:
        raise DeliveryError(
            _("VK answered HTTP %(status)s.") % {"status": error.response.status_code}, permanent=False
        ) from None
    except (requests.RequestException, ValueError) as error:
        raise DeliveryError(
            _("VK could not be reached (%(what)s).") % {"what": type(error).__name__}, permanent=False
        ) from None
