"""Serving a file by its signed, expiring link (``attachments.link``), to whoever may see it.

An employee's link is good only for a signed-in employee (the browser's session, or a personal
API key in ``Authorization: Bearer …``) whom the gate lets see the file
(``access.visible_attachment``); a visitor's link names its contact and serves only that
contact's files (``access.visitor_attachment``). Anything else is the same 404: a link reveals
nothing about files its holder may not see. An expired link is a 410, so a page knows to ask
for a fresh one.

The file is streamed from storage (local or S3) through Django: storage is never exposed.
Only images the browser can show are served inline; everything else is a download, typed as
its content says, never sniffed by the browser, never kept by shared caches.
"""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from helpdesk.accounts import actions as account_actions
from helpdesk.accounts.models import Employee
from helpdesk.conversations import access, attachments
from helpdesk.conversations.models import Attachment

TOKEN_KEYWORDS = (b"bearer", b"token")


def _employee(request: HttpRequest) -> Employee | None:
    """The employee behind the request: a personal API key if one is sent, else the session."""
    parts = request.META.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace").split()
    if parts and parts[0].lower() in TOKEN_KEYWORDS:
        if len(parts) != 2:
            return None
        found = account_actions.employee_for_api_key(parts[1].decode("ascii", "replace"))
        return found[0] if found else None
    user = request.user
    employee = getattr(user, "employee", None) if user.is_authenticated else None
    if employee is None or not employee.is_active or not access.may_use_session(employee):
        return None
    return employee


def _allowed(request: HttpRequest, claim: attachments.LinkClaim) -> Attachment | None:
    if claim.visitor_contact_id is not None:
        return access.visitor_attachment(claim.visitor_contact_id, claim.attachment_id)
    employee = _employee(request)
    return access.visible_attachment(employee, claim.attachment_id) if employee else None


@require_safe
def attachment_file(request: HttpRequest, token: str, name: str) -> HttpResponse:
    """``GET /files/<token>/<name>``: the file, if the link is good and its holder may see it."""
    try:
        claim = attachments.check_link(token)
    except attachments.LinkError as error:
        if error.expired:
            return HttpResponse(
                _("This link to a file has expired. Open the conversation again for a fresh one."),
                status=410,
                content_type="text/plain; charset=utf-8",
            )
        raise Http404(_("No such file.")) from None
    attachment = _allowed(request, claim)
    if attachment is None:
        raise Http404(_("No such file."))
    try:
        handle = attachment.file.open("rb")
    except (OSError, ValueError):  # gone from storage: nothing to serve, and nothing to tell
        raise Http404(_("No such file.")) from None
    inline = attachment.content_type in attachments.INLINE_IMAGE_TYPES
    response = FileResponse(
        handle,
        content_type=attachment.content_type or "application/octet-stream",
        as_attachment=not inline,
        filename=attachment.name,
    )
    if attachment.size is not None:
        response["Content-Length"] = str(attachment.size)
    response["X-Content-Type-Options"] = "nosniff"
    # Private: the link works for its holder only; no shared cache may keep a copy.
    response["Cache-Control"] = "private, max-age=300"
    # Whatever it is, it runs nothing if opened directly.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
    return response
