"""Canned responses: saved replies an agent inserts with "/" in the reply box.

Two scopes: company-wide ones (``owner`` empty, managed by holders of ``manage_canned``,
audited) and each employee's own (managed by that employee alone, not audited: they are
private notes). A shortcut is unique among the live responses of its scope. A personal
shortcut may repeat a company-wide one: for its owner the personal one *shadows* the
company's (the "/" menu offers only theirs), so an agent can keep their own wording.

Placeholders (``{{contact.first_name}}`` …) are filled by :func:`render` for one
conversation and one agent; an unknown one is left as written so the agent sees it.
"""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Company, Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError
from helpdesk.events import audit

from . import access
from .models import CannedResponse, Contact

SHORTCUT_RE = re.compile(r"^[\w-]{1,40}$")
PLACEHOLDERS = (
    "contact.name",
    "contact.first_name",
    "contact.email",
    "contact.phone",
    "agent.name",
    "agent.first_name",
    "company.name",
)
# "{{ contact.name }}": spaces inside the braces are allowed. For an empty value, also the
# separator before it (", " in "Hello, {{contact.first_name}}!"), or after it at a line's
# start, so a missing name leaves "Hello!" rather than "Hello, !".
_PLACEHOLDER_RE = re.compile(
    r"^\{\{\s*(?P<first>[\w.]+)\s*\}\}(?P<after>,?[ \t]*)|(?P<before>,?[ \t]*)\{\{\s*(?P<name>[\w.]+)\s*\}\}",
    re.MULTILINE,
)


# --- Who sees and manages which ----------------------------------------------------------------------------


def available(employee: Employee) -> list[CannedResponse]:
    """What the employee's "/" menu offers: their own, and the company's not shadowed by theirs."""
    rows = list(access.visible_canned_responses(employee).order_by("shortcut", "pk"))
    own = {row.shortcut for row in rows if row.owner_id}
    return [row for row in rows if row.owner_id or row.shortcut not in own]


def may_manage(employee: Employee, canned: CannedResponse) -> bool:
    """Their own, or the company's for holders of manage_canned."""
    if canned.company_id != employee.company_id:
        return False
    return employee.can(Perm.MANAGE_CANNED) if canned.owner_id is None else canned.owner_id == employee.pk


# --- Placeholders -------------------------------------------------------------------------------------


def _first_word(name: str) -> str:
    return name.split()[0] if name.split() else ""


def placeholder_values(*, contact: Contact | None, agent: Employee | None, company: Company) -> dict[str, str]:
    """What each placeholder stands for; an unknown contact name is "" (never "Visitor #12")."""
    contact_name = contact.name.strip() if contact else ""
    agent_name = agent.display_name.strip() if agent else ""
    return {
        "contact.name": contact_name,
        "contact.first_name": _first_word(contact_name),
        "contact.email": contact.email if contact else "",
        "contact.phone": contact.phone if contact else "",
        "agent.name": agent_name,
        "agent.first_name": _first_word(agent_name),
        "company.name": company.name,
    }


def render(body: str, values: dict[str, str]) -> str:
    """Fill the known placeholders; unknown ones stay as written, empty ones take their comma along."""

    def fill(match: re.Match) -> str:
        name = match.group("name") or match.group("first")
        if name not in values:
            return match.group(0)
        value = values[name]
        if value:
            return (match.group("before") or "") + value + (match.group("after") or "")
        return ""

    return _PLACEHOLDER_RE.sub(fill, body)


def canned_state(canned: CannedResponse) -> dict[str, Any]:
    return {"shortcut": canned.shortcut, "title": canned.title, "body": canned.body}


# --- Writing them ------------------------------------------------------------------------------------------


def _clean(shortcut: str, title: str, body: str) -> dict[str, str]:
    shortcut = str(shortcut or "").strip().removeprefix("/").casefold()
    if not SHORTCUT_RE.match(shortcut):
        raise ActionError(
            _("A shortcut is 1 to 40 letters, digits, - or _, without spaces (for example: delivery)."),
            code="bad_shortcut",
            field="shortcut",
        )
    title = " ".join(str(title or "").split())
    if not title:
        raise ActionError(_("Give the response a title."), code="no_title", field="title")
    if len(title) > 120:
        raise ActionError(_("The title can be at most 120 characters long."), code="too_long", field="title")
    body = str(body or "").strip()
    if not body:
        raise ActionError(_("Write the text of the response."), code="no_body", field="body")
    if len(body) > settings.MESSAGE_MAX_CHARS:
        raise ActionError(
            _("The text can be at most %(limit)s characters long.") % {"limit": settings.MESSAGE_MAX_CHARS},
            code="too_long",
            field="body",
        )
    return {"shortcut": shortcut, "title": title, "body": body}


def _require_may_manage(by: Employee, canned: CannedResponse) -> None:
    if canned.company_id != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    if canned.owner_id is None:
        access.require(by, Perm.MANAGE_CANNED)
    elif canned.owner_id != by.pk:
        raise PermissionDenied(_("This is someone else's canned response."))


def _save_unique(canned: CannedResponse, by: Employee) -> None:
    """Save, refusing a shortcut that is already live in the same scope."""
    # Lock the scope's owner (the company, or the employee) so two saves can't both pass the check.
    if canned.owner_id is None:
        Company.objects.select_for_update().filter(pk=canned.company_id).first()
    else:
        Employee.objects.select_for_update().filter(pk=canned.owner_id).first()
    taken = CannedResponse.objects.filter(
        company_id=canned.company_id, owner_id=canned.owner_id, shortcut=canned.shortcut, archived_at__isnull=True
    ).exclude(pk=canned.pk)
    error = ActionError(
        _("The shortcut /%(shortcut)s is already used.") % {"shortcut": canned.shortcut},
        code="duplicate_shortcut",
        field="shortcut",
    )
    if taken.exists():
        raise error
    try:
        with transaction.atomic():
            canned.save()
    except IntegrityError:  # the database's own uniqueness, should a check ever be bypassed
        raise error from None


@transaction.atomic(durable=True)
def create_canned_response(
    *, by: Employee, shortcut: str, title: str, body: str, company_wide: bool = False
) -> CannedResponse:
    """A company-wide response (manage_canned; audited) or the employee's own."""
    if company_wide:
        access.require(by, Perm.MANAGE_CANNED)
    canned = CannedResponse(
        company_id=by.company_id, owner=None if company_wide else by, **_clean(shortcut, title, body)
    )
    _save_unique(canned, by)
    if company_wide:
        audit.record("canned_response.created", company=by.company_id, actor=by, obj=canned, after=canned_state(canned))
    return canned


@transaction.atomic(durable=True)
def update_canned_response(
    canned: CannedResponse, *, by: Employee, shortcut: str, title: str, body: str
) -> CannedResponse:
    _require_may_manage(by, canned)
    cleaned = _clean(shortcut, title, body)
    canned = CannedResponse.objects.select_for_update().get(pk=canned.pk)
    if canned.archived_at:
        raise ActionError(_("This canned response is archived."), code="archived")
    before = canned_state(canned)
    for name, value in cleaned.items():
        setattr(canned, name, value)
    _save_unique(canned, by)
    if canned.owner_id is None:
        audit.record(
            "canned_response.updated",
            company=by.company_id,
            actor=by,
            obj=canned,
            before=before,
            after=canned_state(canned),
        )
    return canned


@transaction.atomic(durable=True)
def archive_canned_response(canned: CannedResponse, *, by: Employee) -> CannedResponse:
    """It leaves the "/" menu and the list; the row stays."""
    _require_may_manage(by, canned)
    canned = CannedResponse.objects.select_for_update().get(pk=canned.pk)
    if canned.archived_at:
        return canned
    canned.archived_at = timezone.now()
    canned.save(update_fields=["archived_at", "updated_at"])
    if canned.owner_id is None:
        audit.record("canned_response.archived", company=by.company_id, actor=by, obj=canned)
    return canned
