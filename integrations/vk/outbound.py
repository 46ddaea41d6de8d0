"""Sending one delivery to a VK user or chat: ``messages.send`` with ``random_id``.

``random_id`` is the delivery's ``idempotency_key``, the same for every attempt, so VK drops
a repeat (a retry after a lost answer, a resend after the worker died): a message never
posts twice.

Files go with the text in that one ``messages.send``, as its ``attachment`` list. Each is
uploaded first through vk-api's ``VkUpload``: a JPEG or PNG as a photo
(``photos.getMessagesUploadServer`` → the upload → ``photos.saveMessagesPhoto`` →
``photo<owner>_<id>``), anything else as a document under its own name
(``docs.getMessagesUploadServer`` with the peer → the upload → ``docs.save`` →
``doc<owner>_<id>``). An upload posts nothing, so a retry simply uploads again; the send that
follows carries the same ``random_id``, and VK drops it if the first one had arrived.

Failures become ``DeliveryError``s; their text is VK's code and words, never
the token (``ApiError`` carries the request's parameters, so its own text is not used).
"""

from __future__ import annotations

import io
import mimetypes

import requests
import vk_api
from django.utils.translation import gettext as _
from vk_api.upload import VkUpload

from helpdesk.accounts import actions as account_actions
from helpdesk.conversations.adapters import DeliveryError
from helpdesk.conversations.models import Attachment, AttachmentStatus, ContactIdentity

from .client import UploadSession, open_session

AUTH_FAILED, TOO_MANY_REQUESTS, FLOOD_CONTROL, INTERNAL = 5, 6, 9, 10
RETRYABLE = {1: None, TOO_MANY_REQUESTS: 1.0, FLOOD_CONTROL: 30.0, INTERNAL: None}  # code -> retry_after
# Everything else VK answers is about this request, this token or this user (5 bad token,
# 7/15 no access, 901 the user did not allow messages, 100 a bad parameter): trying again
# changes nothing, so it fails at once and the agent sees why.
# Images VK takes as photos (shown in the message); a GIF or WebP goes as a document, which VK
# shows as it is (a GIF animated).
PHOTO_TYPES = frozenset({"image/jpeg", "image/png"})


def peer_id(delivery) -> int:
    """Where the conversation lives on VK: the contact's (or the chat's) peer_id."""
    identity = ContactIdentity.objects.filter(
        channel_id=delivery.channel_id, contact_id=delivery.conversation.contact_id
    ).first()
    if identity is None or not identity.external_id.lstrip("-").isdigit():
        raise DeliveryError(_("This conversation has no VK recipient."), permanent=True)
    return int(identity.external_id)


def as_photo(attachment: Attachment) -> bool:
    return attachment.is_image and attachment.content_type in PHOTO_TYPES


def _named(attachment: Attachment, data: bytes) -> io.BytesIO:
    """The file as vk-api's ``FilesOpener`` reads it: it sends the name's extension, which VK's
    document upload judges, so a name without one gets the type's."""
    stream = io.BytesIO(data)
    name = attachment.name or "file"
    if "." not in name.strip("."):
        name += mimetypes.guess_extension(attachment.content_type or "") or ".bin"
    stream.name = name
    return stream


def _reference(kind: str, media: dict) -> str:
    """How ``messages.send`` names an uploaded photo or doc: ``photo<owner>_<id>[_<access key>]``."""
    reference = f"{kind}{int(media['owner_id'])}_{int(media['id'])}"
    return f"{reference}_{media['access_key']}" if media.get("access_key") else reference


def upload(vk, peer: int, attachment: Attachment) -> str:
    """Upload one file for a message to ``peer``; its ``attachment`` reference."""
    try:
        with attachment.file.open("rb") as stream:
            data = stream.read()
    except (OSError, ValueError):  # gone from storage: trying again won't bring it back
        raise DeliveryError(
            _("The file “%(name)s” can't be read from storage.") % {"name": attachment.name}, permanent=True
        ) from None
    uploader = VkUpload(vk)
    uploader.http = UploadSession()
    try:
        if as_photo(attachment):
            (photo,) = uploader.photo_messages(_named(attachment, data), peer_id=peer)[:1]
            return _reference("photo", photo)
        saved = uploader.document_message(_named(attachment, data), title=attachment.name, peer_id=peer)
        return _reference("doc", saved["doc"])
    finally:
        uploader.http.close()


def send(delivery) -> str:
    try:
        token = delivery.channel.secret_values()["access_token"]
    except Exception:  # unreadable secrets: a person must fix the channel's settings
        raise DeliveryError(_("The channel's access token can't be read."), permanent=True) from None
    vk = open_session(token)  # this worker thread's, kept: its connection is reused
    vk.error_handlers.pop(TOO_MANY_REQUESTS, None)  # vk-api would sleep and repeat error 6 forever
    peer = peer_id(delivery)
    files = delivery.message.attachments.filter(status=AttachmentStatus.READY).order_by("pk")
    try:
        references = [upload(vk, peer, attachment) for attachment in files]
        params = {"peer_id": peer, "message": delivery.message.body, "random_id": delivery.idempotency_key}
        if references:
            params["attachment"] = ",".join(references)
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
    except (requests.RequestException, ValueError) as error:  # an upload server's page that is not JSON too
        raise DeliveryError(
            _("VK could not be reached (%(what)s).") % {"what": type(error).__name__}, permanent=False
        ) from None
    except (KeyError, TypeError):  # an upload or save answer of a shape VK does not document
        raise DeliveryError(_("VK gave an answer that can't be read."), permanent=False) from None
