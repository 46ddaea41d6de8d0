"""What every settings page shares: the page frame, posted data and the action button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from helpdesk.errors import ActionError


def _page(request: HttpRequest, template: str, section: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {**context, "settings_page": True, "section": section})


def _posted(request: HttpRequest) -> Any:
    # An empty POST is still a POST: bind it, so the form says what is missing.
    return request.POST if request.method == "POST" else None


def _base_url(request: HttpRequest) -> str:
    return settings.PUBLIC_URL or request.build_absolute_uri("/")


def _press(request: HttpRequest, action: Callable[[], Any], done: str) -> None:
    """Run a button's action: flash ``done``, or the action's refusal (nothing changed)."""
    try:
        action()
    except ActionError as error:
        flash.error(request, error.message)
    else:
        flash.success(request, done)


# --- Company -----------------------------------------------------------------------------------------------
