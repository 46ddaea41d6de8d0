"""The top bar's presence menu: every page has it, so it posts here and comes back."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from helpdesk.accounts import actions as admin_actions
from helpdesk.errors import ActionError

from .decorators import employee_required


@require_POST
@employee_required()
def set_presence(request: HttpRequest) -> HttpResponse:
    """Online, away or offline, as the employee chose; back to the page they were on."""
    try:
        admin_actions.set_presence(request.employee, presence=request.POST.get("presence", ""))
    except ActionError as error:
        return HttpResponseBadRequest(error.message, content_type="text/plain; charset=utf-8")
    back = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return redirect(back if safe else "web:inbox")
