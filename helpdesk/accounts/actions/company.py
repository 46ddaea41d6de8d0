"""Company settings: name, description, time zone, working hours, two-factor rule, logo."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.conversations import access
from helpdesk.errors import ActionError
from helpdesk.events import audit

from ..models import Company, CompanyLogo, Employee, validate_timezone
from ..permissions import Perm
from ._common import _UNSET, _clean_name, _lock_company

LOGO_MAX_BYTES = 512 * 1024
LOGO_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}
WEEKDAYS = range(7)

# Called with (company, previous time zone) inside the transaction that changes a company's zone:
# statistics count in local hours and queue their recount this way (registered by
# helpdesk.reports; accounts imports no higher layer).
timezone_hooks: list[Callable[[Company, str], None]] = []


def add_timezone_hook(hook: Callable[[Company, str], None]) -> None:
    if hook not in timezone_hooks:
        timezone_hooks.append(hook)


def company_state(company: Company) -> dict[str, Any]:
    return {
        "name": company.name,
        "description": company.description,
        "timezone": company.timezone,
        "working_hours": company.working_hours,
        "require_2fa_for_admins": company.require_2fa_for_admins,
        "logo": company.logo_updated_at.isoformat() if company.logo_content_type else "",
    }


def _clock(value: str) -> time:
    """ "9:00" or "09:00" (24-hour clock) as a time."""
    hours, minutes = str(value).strip().split(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(value)
    return time(int(hours), int(minutes))


def clean_working_hours(hours: dict[str, Any]) -> dict[str, list[str]]:
    """{"0": ["09:00", "18:00"], ...}: weekday (Monday = 0) to opening and closing time."""
    if not isinstance(hours, dict):
        raise ActionError(_("Working hours must map weekdays to times."), code="bad_hours", field="working_hours")
    clean: dict[str, list[str]] = {}
    for day, span in hours.items():
        if str(day) not in {str(d) for d in WEEKDAYS}:
            raise ActionError(_("Unknown weekday: %(day)s.") % {"day": day}, code="bad_hours", field="working_hours")
        try:
            start, end = (_clock(value) for value in span)
        except (TypeError, ValueError):
            raise ActionError(
                _("Working hours need a start and an end time like 09:00."), code="bad_hours", field="working_hours"
            ) from None
        if start >= end:
            raise ActionError(
                _("Each day's working hours must end after they start."), code="bad_hours", field="working_hours"
            )
        clean[str(day)] = [start.strftime("%H:%M"), end.strftime("%H:%M")]
    return dict(sorted(clean.items()))


@transaction.atomic(durable=True)
def update_company(
    company: Company,
    *,
    by: Employee,
    name: str = _UNSET,
    description: str = _UNSET,
    timezone_name: str = _UNSET,
    working_hours: dict[str, Any] = _UNSET,
    require_2fa_for_admins: bool = _UNSET,
) -> Company:
    access.require(by, Perm.MANAGE_COMPANY)
    if company.pk != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    company = _lock_company(company.pk)
    before = company_state(company)
    if name is not _UNSET:
        company.name = _clean_name(name, limit=200)
    if description is not _UNSET:
        company.description = (description or "").strip()[:2000]
    if timezone_name is not _UNSET:
        try:
            validate_timezone(timezone_name)
        except Exception:
            raise ActionError(
                _("%(tz)s is not a known time zone.") % {"tz": timezone_name}, code="bad_timezone", field="timezone"
            ) from None
        company.timezone = timezone_name
    if working_hours is not _UNSET:
        company.working_hours = clean_working_hours(working_hours)
    if require_2fa_for_admins is not _UNSET:
        company.require_2fa_for_admins = bool(require_2fa_for_admins)
    company.save()
    if company.timezone != before["timezone"]:
        for hook in timezone_hooks:
            hook(company, before["timezone"])
    audit.record("company.updated", company=company, actor=by, obj=company, before=before, after=company_state(company))
    return company


@transaction.atomic(durable=True)
def set_company_logo(company: Company, *, by: Employee, data: bytes | None) -> Company:
    """Replace (or with ``None`` remove) the logo: a PNG, JPEG, GIF or WebP image up to 512 KB."""
    access.require(by, Perm.MANAGE_COMPANY)
    if company.pk != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    content_type = ""
    if data is not None:
        content_type = _image_type(data)
    company = _lock_company(company.pk)
    before = company_state(company)
    now = timezone.now()
    CompanyLogo.objects.update_or_create(
        company=company, defaults={"data": data or b"", "content_type": content_type, "updated_at": now}
    )
    company.logo_content_type, company.logo_updated_at = content_type, now
    company.save(update_fields=["logo_content_type", "logo_updated_at"])
    audit.record(
        "company.logo_changed", company=company, actor=by, obj=company, before=before, after=company_state(company)
    )
    return company


def _image_type(data: bytes) -> str:
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    if len(data) > LOGO_MAX_BYTES:
        raise ActionError(_("The logo can be at most 512 KB."), code="too_large", field="logo")
    try:
        with Image.open(BytesIO(data)) as image:
            image.verify()
            kind = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        kind = None
    if kind not in LOGO_TYPES:
        raise ActionError(_("The logo must be a PNG, JPEG, GIF or WebP image."), code="bad_image", field="logo")
    return LOGO_TYPES[kind]
