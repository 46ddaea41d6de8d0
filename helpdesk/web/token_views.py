"""Settings → API tokens: every employee creates and revokes their own personal API keys."""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from helpdesk.accounts import actions as admin_actions
from helpdesk.conversations import access
from helpdesk.errors import ActionError

from .decorators import employee_required


class TokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("What the token is for, so you recognise it later (for example: CRM sync)."),
    )


@employee_required()
def api_tokens(request: HttpRequest) -> HttpResponse:
    employee = request.employee
    form = TokenForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            _token, new_key = admin_actions.create_api_token(by=employee, name=form.cleaned_data["name"])
        except ActionError as error:
            form.add_error("name", error.message)
        else:
            form = TokenForm()
    tokens = access.own_api_tokens(employee).order_by("-created_at", "-pk")
    response = render(
        request,
        "web/settings/api_tokens.html",
        {"form": form, "tokens": tokens, "new_key": new_key, "settings_page": True, "section": "web:api-tokens"},
    )
    if new_key:
        # The key is in this page only: shown once, not redirected through the session, never cached.
        response["Cache-Control"] = "no-store"
    return response


@require_POST
@employee_required()
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = access.get_own_api_token(request.employee, token_id)
    admin_actions.revoke_api_token(token, by=request.employee)
    flash.success(request, _("The token “%(name)s” is revoked; requests with it are refused.") % {"name": token.name})
    return redirect("web:api-tokens")
