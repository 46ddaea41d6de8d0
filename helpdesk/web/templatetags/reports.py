"""How the Reports page writes its figures: durations, changes in %, CSAT."""

from __future__ import annotations

from django import template
from django.utils.formats import number_format
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """45 s, 12 min, 3 h 05 min, 2 d 4 h; "—" when there is no figure."""
    if seconds is None:
        return "—"
    s = round(float(seconds))
    if s < 60:
        return _("%(n)s s") % {"n": s}
    minutes = round(s / 60)
    if minutes < 60:
        return _("%(n)s min") % {"n": minutes}
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return _("%(h)s h %(m)02d min") % {"h": hours, "m": minutes}
    days, hours = divmod(hours, 24)
    return _("%(d)s d %(h)s h") % {"d": days, "h": hours}


@register.filter
def change(value) -> str:
    """+12.5 % / -3 %; "—" when there is nothing to compare with (docs/metrics.md)."""
    if value is None:
        return "—"
    sign = "+" if value > 0 else ("−" if value < 0 else "±")
    return f"{sign}{number_format(abs(value), decimal_pos=1 if abs(value) % 1 else 0)} %"


@register.filter
def trend(value) -> str:
    """A CSS class for a change: up, down or flat."""
    if value is None or value == 0:
        return "flat"
    return "up" if value > 0 else "down"


@register.filter
def percent(value) -> str:
    if value is None:
        return "—"
    return f"{number_format(round(value, 1), decimal_pos=1 if round(value, 1) % 1 else 0)} %"


@register.filter
def figure(value) -> str:
    """A count or an average per occurrence; "—" for none."""
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return number_format(round(value, 2), decimal_pos=2)
    return number_format(int(value), force_grouping=True)


@register.filter
def raw(value) -> str:
    """The exact figure for data attributes (tests and scripts read it): "" for none."""
    return "" if value is None else repr(value)
