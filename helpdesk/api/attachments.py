"""Agents' uploads: a file kept for a conversation, then sent with a reply or a note by its id.

``POST /api/v1/conversations/{id}/attachments`` (multipart, field ``file``) answers the upload
(201) with its id and a link; the reply (``attachments: [id, …]``) binds it. The size limit is
kept while the body is read: a request that says it is larger is refused before reading, and
one that turns out larger stops being read at the limit (``LimitedUploadHandler``).
"""

from __future__ import annotations

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from helpdesk.conversations import access, actions, attachments
from helpdesk.conversations.snapshots import attachment_data
from helpdesk.errors import ActionError

from .errors import error_body
from .schema import errors
from .serializers import AttachmentOut

# Room for the multipart framing and the other fields around the file.
MULTIPART_OVERHEAD = 64 * 1024
# How each refusal of a file is answered.
STATUS_OF = {"file_too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, "file_type_not_allowed": 415}


class LimitedUploadHandler(TemporaryFileUploadHandler):
    """Stops reading an upload as soon as it passes ``ATTACHMENT_MAX_BYTES``: never more is kept."""

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int):
        self.received += len(raw_data)
        if self.received > settings.ATTACHMENT_MAX_BYTES:
            self.request.attachment_too_large = self.file_name or "file"
            raise StopUpload(connection_reset=True)
        return super().receive_data_chunk(raw_data, start)


class LimitedMultiPartParser(MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        request._request.upload_handlers = [LimitedUploadHandler(request._request)]
        return super().parse(stream, media_type, parser_context)


def _refusal(error: ActionError) -> Response:
    return Response(error_body(error.code, error.message), status=STATUS_OF.get(error.code, 400))


class AttachmentUploadApi(APIView):
    parser_classes = [LimitedMultiPartParser]

    class Input(serializers.Serializer):
        file = serializers.FileField(help_text=_("The file; its type is judged by its content, not its name."))

    @extend_schema(
        tags=["conversations"],
        request={"multipart/form-data": Input},
        responses={201: AttachmentOut, **errors(400, 403, 404, 413, 415)},
        description=(
            "Upload a file to send with a reply or a note: give its id in the reply's attachments. Until then "
            "nobody else sees it. Limits: ATTACHMENT_MAX_BYTES per file, ATTACHMENT_TYPES by content."
        ),
    )
    def post(self, request, conversation_id: int):
        employee = request.user.employee
        conversation = access.get_conversation(employee, conversation_id)
        if _declared_length(request) > settings.ATTACHMENT_MAX_BYTES + MULTIPART_OVERHEAD:
            # Refused before a byte of it is read.
            return _refusal(_too_large("file"))
        upload = request.FILES.get("file")
        too_large = getattr(request._request, "attachment_too_large", None)
        if too_large:
            return _refusal(_too_large(too_large))
        if upload is None:
            raise serializers.ValidationError({"file": [_("Send the file in the multipart field “file”.")]})
        try:
            with upload.open("rb") as stream:
                attachment = actions.upload_attachment(
                    conversation, stream=stream, name=upload.name, declared_size=upload.size, by_employee=employee
                )
        except ActionError as error:
            return _refusal(error)
        return Response(attachment_data(attachment), status=status.HTTP_201_CREATED)


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _too_large(name: str) -> ActionError:
    try:
        attachments.check_size(settings.ATTACHMENT_MAX_BYTES + 1, attachments.clean_name(name))
    except ActionError as error:
        return error
    raise AssertionError("unreachable")
