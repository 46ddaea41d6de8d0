"""When a snoozed conversation should wake: the presets, in the company's own time zone."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk.accounts.models import Company
from helpdesk.errors import ActionError

# The morning the day-based presets wake at, on the company's clock.
MORNING = time(9, 0)

PRESETS = {
    "hour": gettext_lazy("In 1 hour"),
    "tomorrow": gettext_lazy("Tomorrow 9:00"),
    "next_monday": gettext_lazy("Next Monday 9:00"),
}


def company_zone(company: Company) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(company.timezone)


def _local_morning(day, zone: zoneinfo.ZoneInfo) -> datetime:
    """9:00 on that day on the zone's clock, as an aware UTC time.

    A wall time that a daylight-saving jump skips or repeats is settled by a round trip
    through UTC, so the answer is always a real instant.
    """
    wall = datetime.combine(day, MORNING, tzinfo=zone)
    return wall.astimezone(zoneinfo.ZoneInfo("UTC"))


def preset_time(preset: str, *, company: Company, now: datetime | None = None) -> datetime:
    """The instant a preset means right now for this company; unknown presets are refused."""
    now = now or timezone.now()
    zone = company_zone(company)
    today = now.astimezone(zone).date()
    if preset == "hour":
        return now + timedelta(hours=1)
    if preset == "tomorrow":
        return _local_morning(today + timedelta(days=1), zone)
    if preset == "next_monday":
        # Monday is weekday 0; on a Monday "next Monday" is a week away, never today.
        return _local_morning(today + timedelta(days=(7 - today.weekday()) or 7), zone)
    raise ActionError(_("Unknown snooze preset."), code="bad_preset", field="preset")


def preset_times(company: Company, now: datetime | None = None) -> dict[str, datetime]:
    """Every preset's instant at ``now``, by name."""
    now = now or timezone.now()
    return {name: preset_time(name, company=company, now=now) for name in PRESETS}


def clean_until(until: datetime, *, now: datetime | None = None) -> datetime:
    """A wake time must be in the future: snoozing into the past is refused."""
    if until <= (now or timezone.now()):
        raise ActionError(_("Snooze time must be in the future."), code="past", field="until")
    return until
