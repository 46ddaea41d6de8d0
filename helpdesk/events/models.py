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
