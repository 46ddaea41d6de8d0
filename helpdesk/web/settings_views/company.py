"""Settings → Company: name, time zone, language, logo."""

from __future__ import annotations

from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import CompanyLogo
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError

from ..decorators import employee_required
from ..settings_forms import (
    CompanyForm,
    LogoForm,
    show_action_error,
)
from ._common import _page, _posted, _press


def _company_page(request: HttpRequest, form: CompanyForm, logo_form: LogoForm) -> HttpResponse:
    company = request.employee.company
    return _page(
        request,
        "web/settings/company.html",
        "web:settings-company",
        {"company": company, "form": form, "logo_form": logo_form},
    )


@employee_required(Perm.MANAGE_COMPANY)
def company_settings(request: HttpRequest) -> HttpResponse:
    """Name, description, time zone, working hours and the 2FA rule of the admin's company."""
    me = request.employee
    form = CompanyForm(_posted(request), company=me.company)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            admin_actions.update_company(
                me.company,
                by=me,
                name=data["name"],
                description=data["description"],
                timezone_name=data["timezone"],
                working_hours=form.working_hours(),
                require_2fa_for_admins=data["require_2fa_for_admins"],
            )
        except ActionError as error:
            show_action_error(form, error)
        else:
            flash.success(request, _("Saved."))
            return redirect("web:settings-company")
    return _company_page(request, form, LogoForm())


@employee_required(Perm.MANAGE_COMPANY)
@require_POST
def company_logo_upload(request: HttpRequest) -> HttpResponse:
    """Replace the company logo with an uploaded image (the action checks it is one)."""
    me = request.employee
    logo_form = LogoForm(request.POST, request.FILES)
    if logo_form.is_valid():
        # One byte past the limit is enough for the action to refuse a big file: never read it all.
        data = logo_form.cleaned_data["logo"].read(admin_actions.LOGO_MAX_BYTES + 1)
        try:
            admin_actions.set_company_logo(me.company, by=me, data=data)
        except ActionError as error:
            show_action_error(logo_form, error)
        else:
            flash.success(request, _("The new logo is saved."))
            return redirect("web:settings-company")
    return _company_page(request, CompanyForm(company=me.company), logo_form)


@employee_required(Perm.MANAGE_COMPANY)
@require_POST
def company_logo_remove(request: HttpRequest) -> HttpResponse:
    """Remove the company logo."""
    me = request.employee
    _press(request, lambda: admin_actions.set_company_logo(me.company, by=me, data=None), _("The logo is removed."))
    return redirect("web:settings-company")


@employee_required()
def company_logo(request: HttpRequest) -> HttpResponse:
    """The logo of the signed-in employee's own company (there is no way to name another)."""
    logo = CompanyLogo.objects.filter(company_id=request.employee.company_id).exclude(content_type="").first()
    if logo is None:
        raise Http404
    response = HttpResponse(bytes(logo.data), content_type=logo.content_type)
    # The type was checked at upload; nosniff keeps a browser from guessing another one.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'"
    # Pages link it with ?v=<upload time>, so a new logo is a new address; private: it needs a session.
    response["Cache-Control"] = "private, max-age=86400"
    return response


# --- Employees ------------------------------------------------------------------------------------------------
