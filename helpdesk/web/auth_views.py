"""Signing in: password (throttled by django-axes), then a two-factor code when it is on.

Every attempt lands in the audit log of the company it names. Two-factor setup lives here
too, and the middleware that sends admins to it when their company requires it.
"""

from __future__ import annotations

import time
from typing import Any

import segno
from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth import get_user_model, login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import Employee, username_for
from helpdesk.conversations import access
from helpdesk.errors import ActionError

from .decorators import employee_required
from .lockout import account_locked_out

PENDING = "smartchat.2fa.pending"  # session key: the user who gave the right password
PENDING_SECONDS = 300
CODE_ATTEMPTS = 5
SETUP_SECRET = "smartchat.2fa.setup-secret"


def _employee_named(username: str) -> Employee | None:
    return (
        Employee.objects.select_related("company", "role", "user")
        .filter(user__username=username_for(username.lower()))
        .first()
        if username
        else None
    )


def _safe_next(request: HttpRequest, url: str | None) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return reverse(settings.LOGIN_REDIRECT_URL)


class SignInForm(AuthenticationForm):
    def clean_username(self) -> str:
        # E-mail addresses are the usernames, stored in lower case (a very long one as its digest).
        return username_for((self.cleaned_data.get("username") or "").strip().lower())


class SignInView(auth_views.LoginView):
    """The password step. With two-factor on, the session is opened only after the code."""

    template_name = "web/login.html"
    authentication_form = SignInForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        user = form.get_user()
        employee = _employee_named(user.username)
        if employee is not None and employee.has_2fa:
            self.request.session[PENDING] = {
                "user_id": user.pk,
                "backend": user.backend,
                "at": time.time(),
                "attempts": 0,
                "next": self.get_redirect_url(),
            }
            return redirect("web:login-2fa")
        admin_actions.record_sign_in(employee=employee, username=user.username, succeeded=True)
        return super().form_valid(form)

    def form_invalid(self, form):
        username = (form.data.get("username") or "").strip()
        if account_locked_out(self.request):
            reason = "account locked out"  # too many failures for this e-mail from all addresses
        elif getattr(self.request, "axes_locked_out", False):
            reason = "locked out"
        else:
            reason = "wrong e-mail or password"
        admin_actions.record_sign_in(
            employee=_employee_named(username), username=username, succeeded=False, reason=reason
        )
        return super().form_invalid(form)


def axes_username(request: HttpRequest, credentials: dict | None = None) -> str:
    """E-mails are usernames, compared in lower case: "Bob@X" and "bob@x" count as one."""
    raw = (credentials or {}).get("username") or request.POST.get("username", "")
    return username_for(raw.strip().lower())


def locked_out(request: HttpRequest, *args: Any) -> HttpResponse:
    """What django-axes answers once an address or an account has failed too often: the form, why, how long."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    message = ngettext(
        "Too many failed sign-in attempts. For your security, signing in is blocked for %(minutes)s minute.",
        "Too many failed sign-in attempts. For your security, signing in is blocked for %(minutes)s minutes.",
        minutes,
    ) % {"minutes": minutes}
    return render(request, "web/login.html", {"lockout": message, "form": None}, status=429)


class CodeForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        max_length=10,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )


@never_cache
@csrf_protect
@sensitive_post_parameters("code")
def sign_in_code(request: HttpRequest) -> HttpResponse:
    """The second step: a 6-digit code from the employee's authenticator app."""
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending["at"] > PENDING_SECONDS:
        request.session.pop(PENDING, None)
        flash.info(request, _("Please sign in again."))
        return redirect("web:login")
    user = get_user_model().objects.filter(pk=pending["user_id"], is_active=True).first()
    employee = _employee_named(user.username) if user else None
    if employee is None or not employee.has_2fa:
        request.session.pop(PENDING, None)
        return redirect("web:login")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if admin_actions.verify_totp(employee, form.cleaned_data["code"]):
            request.session.pop(PENDING, None)
            login(request, user, backend=pending["backend"])
            admin_actions.record_sign_in(employee=employee, username=user.username, succeeded=True)
            return redirect(_safe_next(request, pending.get("next")))
        pending["attempts"] += 1
        admin_actions.record_sign_in(
            employee=employee, username=user.username, succeeded=False, reason="wrong two-factor code"
        )
        if pending["attempts"] >= CODE_ATTEMPTS:
            # A guessed code must start over with the password, which django-axes throttles.
            request.session.pop(PENDING, None)
            flash.error(request, _("Too many wrong codes. Please sign in again."))
            return redirect("web:login")
        request.session[PENDING] = pending
        form.add_error("code", _("That code is not right. Check the time on your phone and try again."))
    return render(request, "web/login_2fa.html", {"form": form})


# --- Setting two-factor sign-in up -----------------------------------------------------------------


def _qr_svg(uri: str) -> str:
    # segno writes only paths and numbers, no text from the URI: safe to inline.
    return segno.make(uri, error="m").svg_inline(scale=5, dark="#1f2430", border=2)


@employee_required()
def two_factor(request: HttpRequest) -> HttpResponse:
    """Turn two-factor sign-in on (scan, confirm with a code) or off (with a code)."""
    employee = request.employee
    context: dict[str, Any] = {
        "settings_page": True,
        "section": "web:two-factor",
        "required": access.needs_2fa(employee),
        "form": CodeForm(),
    }
    if not employee.has_2fa:
        secret = request.session.get(SETUP_SECRET) or admin_actions.new_totp_secret()
        request.session[SETUP_SECRET] = secret
        uri = admin_actions.totp_uri(employee, secret)
        context.update({"secret": secret, "qr": _qr_svg(uri)})
    return render(request, "web/settings/two_factor.html", context)


@require_POST
@employee_required()
def two_factor_enable(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST)
    secret = request.session.get(SETUP_SECRET)
    if not secret:
        return redirect("web:two-factor")
    if form.is_valid():
        try:
            admin_actions.enable_totp(request.employee, secret=secret, code=form.cleaned_data["code"])
        except ActionError as error:
            flash.error(request, error.message)
        else:
            request.session.pop(SETUP_SECRET, None)
            flash.success(request, _("Two-factor sign-in is on. You will be asked for a code each time you sign in."))
    else:
        flash.error(request, _("Enter the 6-digit code from your app."))
    return redirect("web:two-factor")


@require_POST
@employee_required()
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST)
    code = form.cleaned_data["code"] if form.is_valid() else ""
    try:
        admin_actions.disable_totp(request.employee, by=request.employee, code=code)
    except ActionError as error:
        flash.error(request, error.message)
    else:
        flash.success(request, _("Two-factor sign-in is off."))
    return redirect("web:two-factor")


class TwoFactorEnrolmentMiddleware:
    """Send employees who must use two-factor sign-in, and haven't set it up, to its setup page."""

    # What they may still reach: the setup itself, signing out, languages, static files.
    ALLOWED = ("web:two-factor", "web:two-factor-enable", "web:logout", "set_language")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        employee = getattr(request.user, "employee", None) if request.user.is_authenticated else None
        if employee is not None and not access.may_use_session(employee) and not self._allowed(request):
            if request.path.startswith("/api/"):
                from django.http import JsonResponse

                message = _("Your company requires two-factor sign-in: set it up first.")
                return JsonResponse({"error": {"code": "2fa_required", "message": message}}, status=403)
            flash.warning(request, _("Your company requires two-factor sign-in for your role. Please set it up now."))
            return redirect("web:two-factor")
        return self.get_response(request)

    def _allowed(self, request: HttpRequest) -> bool:
        if request.path.startswith(settings.STATIC_URL if settings.STATIC_URL.startswith("/") else "/static/"):
            return True
        match = getattr(request, "resolver_match", None)
        if match is None:
            from django.urls import Resolver404, resolve

            try:
                match = resolve(request.path_info)
            except Resolver404:
                return True
        return match.view_name in self.ALLOWED
