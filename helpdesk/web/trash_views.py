"""The Trash: deleted conversations in the employee's scope, and restoring them."""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access, actions

from .decorators import employee_required

PAGE_SIZE = 50


@employee_required(Perm.RESTORE)
def trash(request: HttpRequest) -> HttpResponse:
    conversations = (
        access.trash(request.employee).select_related("contact", "channel", "deleted_by").order_by("-deleted_at", "-pk")
    )
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "web/settings/trash.html", {"page": page, "settings_page": True, "section": "web:trash"})


@require_POST
@employee_required(Perm.RESTORE)
def restore(request: HttpRequest, conversation_id: int) -> HttpResponse:
    # Another company's id, one outside the scope and one not in the Trash all answer 404.
    conversation = access.get_deleted_conversation(request.employee, conversation_id)
    actions.restore_conversation(conversation, by=request.employee)
    flash.success(
        request, _("The conversation with %(name)s is back in the inbox.") % {"name": conversation.contact.display_name}
    )
    return redirect("web:trash")
