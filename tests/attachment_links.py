"""Files' signed links in tests of the widget, whether or not the server that serves them is here.

``attachments.link`` reverses the URL ``attachment-file``, which the file-serving view of
issue 9 (helpdesk/web/file_views.py, built on another branch) routes. Where that view is not
routed yet, ``file_links`` routes a stand-in under the same name, so links can be made and an
image can be shown: it serves a ready file by a visitor's link to the contact it names, and
nothing else. Once the real view is routed, the stand-in is never used.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.http import FileResponse, Http404
from django.urls import NoReverseMatch, include, path, reverse

from helpdesk.conversations import attachments
from helpdesk.conversations.models import Attachment, AttachmentStatus, MessageKind


def real_view_routed() -> bool:
    try:
        reverse("attachment-file", args=["token", "name"])
    except NoReverseMatch:
        return False
    return True


def _stand_in(request, token: str, name: str):
    claim = attachments.read_link(token)
    if claim is None or claim.visitor_contact_id is None:
        raise Http404
    attachment = Attachment.objects.filter(
        pk=claim.attachment_id,
        status=AttachmentStatus.READY,
        conversation__contact_id=claim.visitor_contact_id,
        message__deleted_at__isnull=True,
        message__kind=MessageKind.MESSAGE,
    ).first()
    if attachment is None:
        raise Http404
    return FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)


urlpatterns = [
    path("", include("smartchat.urls")),
    path("files/<str:token>/<path:name>", _stand_in, name="attachment-file"),
]


@pytest.fixture
def file_links(settings):
    """Links can be made (and, through the stand-in, opened by their visitor)."""
    if not real_view_routed():
        settings.ROOT_URLCONF = "tests.attachment_links"


def claim_of(url: str) -> attachments.LinkClaim | None:
    """What a file link says: ``/files/<token>/<name>``."""
    parts = urlsplit(url).path.split("/")
    assert parts[1] == "files", url
    return attachments.read_link(parts[2])


handler400 = "helpdesk.api.errors.bad_request"
handler403 = "helpdesk.api.errors.permission_denied"
handler404 = "helpdesk.api.errors.page_not_found"
handler500 = "helpdesk.api.errors.server_error"
