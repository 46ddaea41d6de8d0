"""The settings pages' forms. They check the shape of what was typed; the actions check the rules.

Rules with a message of their own (an empty or duplicate name, an unknown permission, a
capacity out of range…) are left to ``helpdesk.accounts.actions``, so a page shows the same
words the API does, and one place decides.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from helpdesk.accounts.models import AssignmentMethod, BuiltinRole, Company, Employee, Role, Scope
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.errors import ActionError

# The regions of the IANA database; the rest (US/…, Etc/GMT+3, Cuba, …) are legacy aliases.
TIMEZONE_REGIONS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
DEFAULT_HOURS = ("09:00", "18:00")


def show_action_error(form: forms.Form, error: ActionError) -> None:
    """Put an action's refusal on the field it is about, or above the form."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


class ActionChecksChoice(forms.ChoiceField):
    """A choice the action validates, so a forged value gets the action's own message."""

    def valid_value(self, value: str) -> bool:
        return True


class ActionChecksChoices(forms.MultipleChoiceField):
    """Several choices the action validates (see :class:`ActionChecksChoice`)."""

    def valid_value(self, value: str) -> bool:
        return True


def _utc_offset(zone: str, now: datetime) -> str:
    offset = now.astimezone(zoneinfo.ZoneInfo(zone)).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset else 0
    sign = "+" if minutes >= 0 else "−"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def timezone_choices(current: str = "") -> list[Any]:
    """UTC first, then the zones grouped by region, cities alphabetically, each with its offset today."""
    now = datetime.now(zoneinfo.ZoneInfo("UTC"))
    zones = sorted(z for z in zoneinfo.available_timezones() if z.split("/", 1)[0] in TIMEZONE_REGIONS and "/" in z)
    groups: dict[str, list[tuple[str, str]]] = {}
    for zone in zones:
        region, city = zone.split("/", 1)
        groups.setdefault(region, []).append((zone, f"{city.replace('_', ' ')} ({_utc_offset(zone, now)})"))
    choices: list[Any] = [("UTC", "UTC")]
    if current and current != "UTC" and current not in zones:
        choices.append((current, current))  # an alias chosen earlier stays selectable
    return choices + list(groups.items())


class CompanyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Company name"), required=False)
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    timezone = forms.ChoiceField(
        label=gettext_lazy("Time zone"),
        help_text=gettext_lazy("Times on every page and in reports are shown in this time zone."),
    )
    require_2fa_for_admins = forms.BooleanField(
        label=gettext_lazy("Require two-factor sign-in for admins"),
        help_text=gettext_lazy("Employees who manage employees or roles must set up an authenticator app."),
        required=False,
    )

    def __init__(self, *args: Any, company: Company, **kwargs: Any) -> None:
        hours = company.working_hours or {}
        initial = {
            "name": company.name,
            "description": company.description,
            "timezone": company.timezone,
            "require_2fa_for_admins": company.require_2fa_for_admins,
        }
        for day in range(7):
            start, end = hours.get(str(day), DEFAULT_HOURS)
            initial |= {f"open_{day}": str(day) in hours, f"start_{day}": start, f"end_{day}": end}
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["name"].widget.attrs.update(required=True, maxlength=200)
        self.fields["timezone"].choices = timezone_choices(company.timezone)
        for day in range(7):
            self.fields[f"open_{day}"] = forms.BooleanField(label=WEEKDAYS[day], required=False)
            for part in ("start", "end"):
                self.fields[f"{part}_{day}"] = forms.TimeField(
                    required=False, widget=forms.TimeInput(format="%H:%M", attrs={"type": "time"})
                )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for day in range(7):
            if data.get(f"open_{day}") and not (data.get(f"start_{day}") and data.get(f"end_{day}")):
                self.add_error(f"start_{day}", _("Enter the opening and the closing time."))
        return data

    def weekday_rows(self) -> list[dict[str, Any]]:
        """Monday to Sunday, each with its open box and its two times (for the template)."""
        return [
            {"open": self[f"open_{day}"], "start": self[f"start_{day}"], "end": self[f"end_{day}"]} for day in range(7)
        ]

    def working_hours(self) -> dict[str, list[str]]:
        """The open days as clean_working_hours expects them: {"0": ["09:00", "18:00"], ...}."""
        data = self.cleaned_data
        return {
            str(day): [data[f"start_{day}"].strftime("%H:%M"), data[f"end_{day}"].strftime("%H:%M")]
            for day in range(7)
            if data.get(f"open_{day}")
        }


class LogoForm(forms.Form):
    logo = forms.FileField(
        label=gettext_lazy("Logo"),
        help_text=gettext_lazy("A PNG, JPEG, GIF or WebP image up to 512 KB; a square one looks best."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )


def givable_roles(viewer: Employee, *, keep: Role | None = None) -> QuerySet[Role]:
    """The roles the viewer may give: not archived and no more powerful than their own (plus ``keep``)."""
    roles = access.company_roles(viewer)
    allowed = [role.pk for role in roles.filter(archived_at__isnull=True) if access.outranks(viewer, role)]
    if keep is not None:
        allowed.append(keep.pk)
    return roles.filter(pk__in=allowed).order_by("name")


class RoleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, role: Role) -> str:
        return _("%(role)s (archived)") % {"role": role.label} if role.archived else role.label


class EmployeeForm(forms.Form):
    """An employee's name, role, teams and capacity; with ``employee`` it edits them."""

    email = forms.CharField(label=gettext_lazy("E-mail"), required=False, widget=forms.EmailInput())
    name = forms.CharField(label=pgettext_lazy("person", "Name"), required=False)
    role = RoleChoiceField(label=gettext_lazy("Role"), queryset=Role.objects.none(), empty_label=None)
    teams = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Teams"), queryset=None, required=False, widget=forms.CheckboxSelectMultiple
    )
    capacity = forms.IntegerField(
        label=gettext_lazy("Capacity"),
        help_text=gettext_lazy("How many open conversations automatic assignment gives them at most."),
        widget=forms.NumberInput(attrs={"min": 0, "max": 1000}),
    )

    def __init__(self, *args: Any, viewer: Employee, employee: Employee | None = None, **kwargs: Any) -> None:
        if employee is not None:
            kwargs["initial"] = {
                "name": employee.display_name,
                "role": employee.role,
                "teams": list(employee.teams.all()),
                "capacity": employee.capacity,
            }
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs.update(required=True, maxlength=150)
        self.fields["role"].queryset = roles = givable_roles(viewer, keep=employee.role if employee else None)
        self.fields["teams"].queryset = access.company_teams(viewer).order_by("name")
        if employee is None:
            self.fields["email"].widget.attrs.update(required=True, autocomplete="off")
            if not self.is_bound:
                # A newcomer starts with the fewest powers: the built-in agent role, when it may be given.
                self.initial = {"capacity": 10, "role": roles.filter(builtin=BuiltinRole.AGENT).first()}
        else:
            del self.fields["email"]  # the sign-in e-mail is theirs: changing it is not an admin's edit
            if employee.pk == viewer.pk:
                self.fields["role"].disabled = True
                self.fields["role"].help_text = _("You can't change your own role.")


class TeamForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Team name"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs.update(required=True, maxlength=100)


class TeamMembersForm(TeamForm):
    members = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Members"), queryset=None, required=False, widget=forms.CheckboxSelectMultiple
    )
    assignment_method = ActionChecksChoice(
        label=gettext_lazy("Automatic assignment"),
        choices=AssignmentMethod.choices,
        required=False,  # not sent: unchanged
        widget=forms.RadioSelect,
        help_text=gettext_lazy(
            "New conversations of this team go to its online members who can reply and have room; "
            "the rest wait in the team's queue, highest priority and longest waiting first."
        ),
    )
    max_open_per_agent = forms.IntegerField(
        label=gettext_lazy("Open conversations per agent at most"),
        required=False,
        widget=forms.NumberInput(attrs={"min": 0, "max": 1000}),
        help_text=gettext_lazy("Of this team, on top of each agent's own capacity. Leave empty for no team limit."),
    )

    def __init__(self, *args: Any, viewer: Employee, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = (
            access.company_employees(viewer).filter(is_active=True).order_by("display_name", "pk")
        )


class RoleForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Role name"), required=False)
    scope = ActionChecksChoice(label=gettext_lazy("Conversation access"), choices=Scope.choices)
    permissions = ActionChecksChoices(label=gettext_lazy("Permissions"), choices=Perm.choices, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].widget.attrs.update(required=True, maxlength=100)
