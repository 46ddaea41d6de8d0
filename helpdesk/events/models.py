"""The event log (outbox): every state change is a row, fanned out after commit."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from helpdesk.accounts.models import Company, Employee


class Event(models.Model):
    id = models.BigAutoField(primary_key=True)
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="+")
    type = models.CharField(max_length=60)
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    actor = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["company", "id"], name="event_catchup"),
            models.Index(fields=["conversation", "id"], name="event_by_conversation"),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class AuditEntry(models.Model):
    """Who changed what and when, with the values before and after: the admins' audit log.

    Names are copied in (``actor_name``, ``object_repr``) so the log still reads right after
    the people and things it mentions are renamed or deactivated.
    """

    id = models.BigAutoField(primary_key=True)
    # Empty only for sign-in attempts that name no known employee.
    company = models.ForeignKey(Company, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    actor_name = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["company", "-id"], name="audit_by_company"),
            models.Index(fields=["company", "action", "-id"], name="audit_by_action"),
            models.Index(fields=["company", "actor", "-id"], name="audit_by_actor"),
            # An employee's (or role's, team's) history on its own page.
            models.Index(fields=["company", "object_type", "object_id", "-id"], name="audit_by_object"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.object_repr}"
