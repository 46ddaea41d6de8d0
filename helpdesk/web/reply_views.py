"""Settings for ready-made replies: canned responses (everyone's own, and the company's) and
quick answers (automatic replies, with a page to test a phrase against them).

Reads start from ``access``; writes go through ``conversations.canned`` and
``conversations.quick_answers``, whose refusals are shown on the field they name.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access, canned, quick_answers
from helpdesk.conversations.models import CannedResponse, QuickAnswer
from helpdesk.errors import ActionError

from .decorators import employee_required
from .settings_forms import show_action_error

# How the test page names each kind of match.
HOW_LABELS = {
    "exact": gettext_lazy("the whole message is the phrase"),
    "contained": gettext_lazy("the phrase is in the message"),
    "similar": gettext_lazy("similar words (typos forgiven)"),
}
SCOPE_CHOICES = [("mine", gettext_lazy("Only me")), ("company", gettext_lazy("The whole company"))]


def _page(request: HttpRequest, template: str, section: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {**context, "settings_page": True, "section": section})


def _posted(request: HttpRequest) -> Any:
    return request.POST if request.method == "POST" else None


def _placeholder_help() -> str:
    names = ", ".join("{{" + name + "}}" for name in canned.PLACEHOLDERS)
    return _("Placeholders filled in when you insert it: %(names)s.") % {"names": names}


# --- Canned responses ----------------------------------------------------------------------------------------


class CannedResponseForm(forms.Form):
    # Required-ness and limits are the action's rules; it says what is wrong in the same words as the API.
    shortcut = forms.CharField(
        label=gettext_lazy("Shortcut"),
        required=False,
        help_text=gettext_lazy("Type / and the shortcut in the reply box, for example /delivery."),
    )
    title = forms.CharField(label=pgettext_lazy("canned response", "Title"), required=False)
    body = forms.CharField(label=gettext_lazy("Text"), required=False, widget=forms.Textarea(attrs={"rows": 5}))

    def __init__(self, *args: Any, help_text: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["body"].help_text = help_text


class NewCannedResponseForm(CannedResponseForm):
    scope = forms.ChoiceField(
        label=gettext_lazy("Who can use it"), choices=SCOPE_CHOICES, initial="mine", widget=forms.RadioSelect
    )

    def __init__(self, *args: Any, company_wide_allowed: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not company_wide_allowed:
            del self.fields["scope"]


@employee_required()
def canned_responses(request: HttpRequest) -> HttpResponse:
    """The company's canned responses (editable with manage_canned) and the employee's own."""
    me = request.employee
    may_share = me.can(Perm.MANAGE_CANNED)
    form = NewCannedResponseForm(_posted(request), company_wide_allowed=may_share, help_text=_placeholder_help())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            created = canned.create_canned_response(
                by=me,
                shortcut=data["shortcut"],
                title=data["title"],
                body=data["body"],
                company_wide=data.get("scope") == "company",
            )
        except ActionError as error:
            show_action_error(form, error)
        else:
            flash.success(request, _("The canned response /%(shortcut)s is saved.") % {"shortcut": created.shortcut})
            return redirect("web:canned-responses")
    rows = list(access.visible_canned_responses(me).order_by("shortcut", "pk"))
    company_rows = [row for row in rows if row.owner_id is None]
    shared = {row.shortcut for row in company_rows}
    mine = [{"row": row, "shadows": row.shortcut in shared} for row in rows if row.owner_id]
    return _page(
        request,
        "web/settings/canned_responses.html",
        "web:canned-responses",
        {"company_rows": company_rows, "mine": mine, "form": form, "may_share": may_share},
    )


def _manageable(request: HttpRequest, canned_id: int) -> CannedResponse:
    # A colleague's own response, or another company's, is a 404; the company's without the right, a 403.
    row = access.get_canned_response(request.employee, canned_id)
    if not canned.may_manage(request.employee, row):
        raise PermissionDenied(_("Only admins may change the company's canned responses."))
    return row


@employee_required()
def canned_response(request: HttpRequest, canned_id: int) -> HttpResponse:
    """Edit one canned response."""
    me = request.employee
    row = _manageable(request, canned_id)
    initial = {"shortcut": row.shortcut, "title": row.title, "body": row.body}
    form = CannedResponseForm(_posted(request), initial=initial, help_text=_placeholder_help())
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            canned.update_canned_response(row, by=me, shortcut=data["shortcut"], title=data["title"], body=data["body"])
        except ActionError as error:
            show_action_error(form, error)
        else:
            flash.success(request, _("Saved."))
            return redirect("web:canned-responses")
    return _page(request, "web/settings/canned_response.html", "web:canned-responses", {"row": row, "form": form})


@employee_required()
@require_POST
def canned_response_archive(request: HttpRequest, canned_id: int) -> HttpResponse:
    row = _manageable(request, canned_id)
    canned.archive_canned_response(row, by=request.employee)
    flash.success(request, _("/%(shortcut)s is archived.") % {"shortcut": row.shortcut})
    return redirect("web:canned-responses")


# --- Quick answers --------------------------------------------------------------------------------------------


class QuickAnswerForm(forms.Form):
    title = forms.CharField(label=pgettext_lazy("quick answer", "Title"), required=False)
    triggers = forms.CharField(
        label=gettext_lazy("Trigger phrases"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=gettext_lazy(
            "One per line. Case, punctuation and small typos don't matter; a phrase also matches "
            "inside a longer message."
        ),
    )
    answer = forms.CharField(
        label=gettext_lazy("Answer"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=gettext_lazy(
            "Sent to the customer at once, marked as an automatic reply. {{contact.first_name}} and "
            "{{company.name}} are filled in."
        ),
    )
    resolves = forms.BooleanField(
        label=gettext_lazy("The answer resolves the conversation"),
        required=False,
        help_text=gettext_lazy("Otherwise the conversation stays open and goes to an agent as usual."),
    )
    enabled = forms.BooleanField(label=gettext_lazy("On"), required=False, initial=True)


@employee_required(Perm.MANAGE_CANNED)
def quick_answer_list(request: HttpRequest) -> HttpResponse:
    rules = access.company_quick_answers(request.employee).order_by("title", "pk")
    return _page(request, "web/settings/quick_answers.html", "web:quick-answers", {"rules": rules})


def _save_quick_answer(request: HttpRequest, rule: QuickAnswer | None) -> HttpResponse:
    me = request.employee
    initial = (
        {"enabled": True}
        if rule is None
        else {
            "title": rule.title,
            "triggers": "\n".join(rule.triggers),
            "answer": rule.answer,
            "resolves": rule.resolves,
            "enabled": rule.enabled,
        }
    )
    form = QuickAnswerForm(_posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if rule is None:
                quick_answers.create_quick_answer(by=me, **data)
            else:
                quick_answers.update_quick_answer(rule, by=me, **data)
        except ActionError as error:
            show_action_error(form, error)
        else:
            flash.success(request, _("The quick answer “%(title)s” is saved.") % {"title": data["title"].strip()})
            return redirect("web:quick-answers")
    return _page(request, "web/settings/quick_answer.html", "web:quick-answers", {"rule": rule, "form": form})


@employee_required(Perm.MANAGE_CANNED)
def quick_answer_add(request: HttpRequest) -> HttpResponse:
    return _save_quick_answer(request, None)


@employee_required(Perm.MANAGE_CANNED)
def quick_answer(request: HttpRequest, quick_answer_id: int) -> HttpResponse:
    return _save_quick_answer(request, access.get_quick_answer(request.employee, quick_answer_id))


@employee_required(Perm.MANAGE_CANNED)
@require_POST
def quick_answer_archive(request: HttpRequest, quick_answer_id: int) -> HttpResponse:
    rule = access.get_quick_answer(request.employee, quick_answer_id)
    quick_answers.archive_quick_answer(rule, by=request.employee)
    flash.success(request, _("The quick answer “%(title)s” is archived.") % {"title": rule.title})
    return redirect("web:quick-answers")


class PhraseForm(forms.Form):
    phrase = forms.CharField(
        label=gettext_lazy("A customer's message"),
        max_length=settings.MESSAGE_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


@employee_required(Perm.MANAGE_CANNED)
def quick_answer_test(request: HttpRequest) -> HttpResponse:
    """Which quick answer a message would fire, and why (or why none does)."""
    form = PhraseForm(request.GET if "phrase" in request.GET else None)
    verdict = rows = None
    if form.is_bound and form.is_valid():
        rules = list(access.company_quick_answers(request.employee).filter(enabled=True).order_by("pk"))
        verdict = quick_answers.explain(rules, form.cleaned_data["phrase"])
        rows = [{"candidate": c, "how": HOW_LABELS[c.how], "percent": round(c.score * 100)} for c in verdict.candidates]
    return _page(
        request,
        "web/settings/quick_answer_test.html",
        "web:quick-answers",
        {
            "form": form,
            "verdict": verdict,
            "rows": rows,
            "threshold_percent": round(settings.QUICK_ANSWER_SIMILARITY * 100),
        },
    )
