"""Companies, their employees, teams and roles."""

from __future__ import annotations

import hashlib
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as dj_timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(tz)s is not a known time zone."), params={"tz": value})


USERNAME_LENGTH = 150  # django.contrib.auth's username column; an e-mail address may be 254


def username_for(email: str) -> str:
    """The username of the account with this e-mail address (give it in lower case).

    E-mail addresses are the usernames. One longer than the username column is stored whole in
    the e-mail column and named by its digest instead, so every valid address fits. Idempotent:
    a username maps to itself, so sign-in may pass either.
    """
    if len(email) <= USERNAME_LENGTH:
        return email
    return "sha256:" + hashlib.sha256(email.encode()).hexdigest()


class Company(models.Model):
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    timezone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_timezone])
    # The logo's bytes live in CompanyLogo (the company row is read on every request); here
    # is what pages need to show it: its type ("" when there is none) and when it changed.
    logo_content_type = models.CharField(max_length=40, blank=True)
    logo_updated_at = models.DateTimeField(null=True, blank=True)
    # {"0": ["09:00", "18:00"], ...}: Monday is "0"; a missing day is a day off.
    working_hours = models.JSONField(_("working hours"), default=dict, blank=True)
    require_2fa_for_admins = models.BooleanField(_("require two-factor sign-in for admins"), default=False)
    # Made by `manage.py seed_demo` and by nothing else: only a demo company's widget is shown
    # to anyone on the public demo website (/demo/).
    is_demo = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        verbose_name = _("company")
        verbose_name_plural = _("companies")

    def __str__(self) -> str:
        return self.name


class CompanyLogo(models.Model):
    """A company's logo image. In the database, not on a disk: every web process serves it."""

    company = models.OneToOneField(Company, on_delete=models.PROTECT, primary_key=True, related_name="logo")
    data = models.BinaryField(_("logo"), editable=False)
    content_type = models.CharField(max_length=40)
    updated_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"logo of company {self.company_id}"


class Scope(models.TextChoices):
    ALL = "all", _("All conversations")
    TEAMS = "teams", _("Conversations of the employee's teams")
    ASSIGNED = "assigned", _("Only conversations assigned to the employee")


class BuiltinRole(models.TextChoices):
    AGENT = "agent", _("Agent")
    ADMIN = "admin", _("Admin")
    SUPER_ADMIN = "super_admin", _("Super-admin")


# The names the built-in roles are created with (stored as data, in English).
BUILTIN_ROLE_NAMES = {BuiltinRole.AGENT: "Agent", BuiltinRole.ADMIN: "Admin", BuiltinRole.SUPER_ADMIN: "Super-admin"}


class Role(models.Model):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="roles")
    name = models.CharField(_("name"), max_length=100)
    builtin = models.CharField(max_length=20, choices=BuiltinRole.choices, blank=True)
    scope = models.CharField(_("conversation access"), max_length=10, choices=Scope.choices, default=Scope.ASSIGNED)
    permissions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="role_name_unique_per_company"),
            models.UniqueConstraint(
                fields=["company", "builtin"], condition=~models.Q(builtin=""), name="builtin_role_once_per_company"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def archived(self) -> bool:
        return self.archived_at is not None

    @property
    def label(self) -> str:
        """The name to show: a built-in role keeps its translated name until someone renames it."""
        if self.builtin and self.name == BUILTIN_ROLE_NAMES.get(self.builtin):
            return str(BuiltinRole(self.builtin).label)
        return self.name

    def allows(self, perm: str) -> bool:
        return perm in self.permissions


class AssignmentMethod(models.TextChoices):
    BALANCED = "balanced", _("Balanced: the online agent with the fewest open conversations")
    ROUND_ROBIN = "round_robin", _("Round robin: online agents in turn")
    MANUAL = "manual", _("Manual: conversations wait in the team's queue")


class Team(models.Model):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="teams")
    name = models.CharField(_("name"), max_length=100)
    assignment_method = models.CharField(
        _("automatic assignment"), max_length=20, choices=AssignmentMethod.choices, default=AssignmentMethod.BALANCED
    )
    # A team's own cap on open conversations per agent, on top of each agent's capacity.
    max_open_per_agent = models.PositiveIntegerField(_("open conversations per agent at most"), null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="team_name_unique_per_company")]

    def __str__(self) -> str:
        return self.name


class Presence(models.TextChoices):
    ONLINE = "online", _("Online")
    AWAY = "away", _("Away")
    OFFLINE = "offline", _("Offline")


class Employee(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="employee")
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="employees")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="employees")
    teams = models.ManyToManyField(Team, related_name="members", blank=True)
    display_name = models.CharField(pgettext_lazy("person", "name"), max_length=150)
    presence = models.CharField(max_length=10, choices=Presence.choices, default=Presence.OFFLINE)
    # Refreshed by the inbox socket's heartbeat: "online" only counts while this is recent.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    capacity = models.PositiveIntegerField(_("capacity"), default=10)
    # When a conversation was last given to them automatically: ties go to whoever waited longest.
    last_assigned_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=dj_timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # Two-factor sign-in: a base32 TOTP secret, on once confirmed with a code from the app.
    totp_secret = models.CharField(max_length=64, blank=True)
    totp_confirmed_at = models.DateTimeField(null=True, blank=True)
    # The last time step a code was accepted for: a code works once (no replay).
    totp_last_step = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["company", "presence"])]

    def __str__(self) -> str:
        return self.display_name

    def can(self, perm: str) -> bool:
        return self.is_active and self.role.allows(perm)

    @property
    def has_2fa(self) -> bool:
        return self.totp_confirmed_at is not None


class ApiToken(models.Model):
    """A personal API key: acts as its employee. Only a hash of the secret is stored."""

    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    # The public part of the key ("sc_<prefix>_<secret>"), to find the row without the secret.
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=dj_timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class PresenceChange(models.Model):
    """Each change of an employee's presence, kept for statistics (online time, coverage)."""

    class Source(models.TextChoices):
        MANUAL = "manual", _("Set by the employee")
        AUTOMATIC = "automatic", _("No open inbox for a while")
        CONNECTION = "connection", _("Opened the inbox")

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+")
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, related_name="presence_changes")
    presence = models.CharField(max_length=10, choices=Presence.choices)
    source = models.CharField(max_length=12, choices=Source.choices)
    at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["company", "at"], name="presence_by_company"),
            models.Index(fields=["employee", "at"], name="presence_by_employee"),
        ]

    def __str__(self) -> str:
        return f"{self.employee_id} {self.presence} at {self.at:%Y-%m-%d %H:%M}"
