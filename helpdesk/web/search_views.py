"""The search page: messages, notes and contacts the employee may see, matches marked."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from helpdesk.conversations import search

from .decorators import employee_required


@employee_required()
def search_page(request: HttpRequest) -> HttpResponse:
    employee = request.employee
    text = request.GET.get("q", "")
    context = {"q": " ".join(text.split()), "page": None, "contacts": [], "error": None, "common_only": False}
    if context["q"]:
        try:
            before = _before(request.GET.get("before"))
            context["page"] = search.messages(employee, text, before=before)
            context["contacts"] = search.contacts(employee, text) if before is None else []
            context["continued"] = before is not None
            if not context["page"].hits and not context["contacts"]:
                context["common_only"] = search.only_common_words(text)
        except search.SearchError as error:
            context["error"] = str(error)
    status = 400 if context["error"] else 200
    return render(request, "web/search.html", context, status=status)


def _before(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()):
        raise search.SearchError(_("That page of results does not exist; search again."))
    return int(value)
