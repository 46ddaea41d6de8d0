"""Settings → Blocked contacts: who is blocked, why, until when and by whom; and unblocking.

A block that has run out is over (``Contact.is_blocked`` compares with the clock), so it
is not listed: the list shows only blocks in force.
"""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.db.models import OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access, actions

from .decorators import employee_required

PAGE_SIZE = 50


@employee_required(Perm.BLOCK_CONTACTS)
def blocked_contacts(request: HttpRequest) -> HttpResponse:
    me = request.employee
    # Each contact's most recent conversation the viewer may open, to link it.
    latest = (
        access.visible_conversations(me)
        .filter(contact=OuterRef("pk"))
        .order_by("-last_activity_at", "-pk")
        .values("pk")[:1]
    )
    contacts = (
        access.visible_contacts(me)
        .filter(blocked_at__isnull=False)
        .filter(Q(blocked_until__isnull=True) | Q(blocked_until__gt=timezone.now()))
        .select_related("blocked_by")
        .annotate(latest_conversation_id=Subquery(latest))
        .order_by("-blocked_at", "-pk")
    )
    page = Paginator(contacts, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "web/settings/blocked_contacts.html",
        {"page": page, "settings_page": True, "section": "web:blocked-contacts"},
    )


@employee_required(Perm.BLOCK_CONTACTS)
@require_POST
def unblock(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = access.get_contact(request.employee, contact_id)
    actions.unblock_contact(contact, by=request.employee)
    flash.success(request, _("%(name)s is unblocked.") % {"name": contact.display_name})
    return redirect("web:blocked-contacts")
