"""Contacts, channels (inboxes), conversations, their messages and what hangs on them (revisions,
consents, ratings, read markers, mentions), canned responses and quick answers.

Only ``actions`` writes these models; only ``access.py`` decides who may read them.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from helpdesk.accounts.models import Company, Employee, Team


def new_public_key() -> str:
    return secrets.token_urlsafe(18)


class Contact(models.Model):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="contacts")
    name = models.CharField(pgettext_lazy("person", "name"), max_length=200, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Blocked: their messages are kept but open nothing, notify nobody and are not routed.
    # blocked_until empty while blocked_at is set means "until unblocked".
    blocked_at = models.DateTimeField(null=True, blank=True)
    blocked_until = models.DateTimeField(null=True, blank=True)
    blocked_reason = models.CharField(_("reason"), max_length=500, blank=True)
    blocked_by = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        indexes = [
            models.Index(fields=["company", "email"]),
            models.Index(
                fields=["company", "blocked_at"], condition=Q(blocked_at__isnull=False), name="contact_blocked"
            ),
        ]

    def __str__(self) -> str:
        return self.own_name or _("Visitor #%(id)s") % {"id": self.pk}

    def is_blocked(self, at=None) -> bool:
        at = at or timezone.now()
        return self.blocked_at is not None and (self.blocked_until is None or self.blocked_until > at)

    @property
    def own_name(self) -> str:
        """The name the contact gave us (or their address); "" when we know none.

        Events store this, not ``display_name``: they are read later in other languages,
        so the "Visitor #12" fallback is added by whoever shows it.
        """
        return self.name or self.email or self.phone

    @property
    def display_name(self) -> str:
        return str(self)


class ChannelKind(models.TextChoices):
    WIDGET = "widget", _("Website widget")
    TELEGRAM = "telegram", "Telegram"
    VK = "vk", "VK"
    EMAIL = "email", _("E-mail")
    API = "api", "API"


class Channel(models.Model):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="channels")
    kind = models.CharField(max_length=20, choices=ChannelKind.choices)
    name = models.CharField(_("name"), max_length=100)
    # Identifies the channel in public URLs (widget snippet, webhooks); not a secret.
    public_key = models.CharField(max_length=40, unique=True, default=new_public_key)
    settings = models.JSONField(default=dict, blank=True)
    # The kind's credentials (Adapter.secret_fields), a Fernet token of their JSON: see
    # conversations/secrets.py. Never shown, logged or audited; read through ``secret_values``.
    secrets = models.TextField(blank=True, default="")
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="channels")
    created_at = models.DateTimeField(default=timezone.now)
    # Set: the channel is disabled (takes no messages, sends none) and can be enabled again.
    archived_at = models.DateTimeField(null=True, blank=True)
    # Set: removed from Settings; also disabled. Its conversations and contacts stay.
    removed_at = models.DateTimeField(null=True, blank=True)
    # Set when the provider refused the channel's credentials (a revoked token): the channel
    # is broken until it is saved again with working ones. ``broken_reason`` says why.
    broken_at = models.DateTimeField(null=True, blank=True)
    broken_reason = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def enabled(self) -> bool:
        return self.archived_at is None

    def secret_values(self) -> dict[str, str]:
        """The decrypted credentials; raises ``secrets.SecretsUnreadable`` if no key opens them."""
        from .. import secrets

        return secrets.decrypt(self.secrets)


class ContactIdentity(models.Model):
    """A contact's own id on one channel (widget visitor id, Telegram chat id, e-mail address)."""

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="identities")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="identities")
    external_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "external_id"], name="identity_unique_per_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id}:{self.external_id}"


class Status(models.TextChoices):
    OPEN = "open", _("Open")
    SNOOZED = "snoozed", _("Snoozed")
    RESOLVED = "resolved", _("Resolved")


class Priority(models.IntegerChoices):
    NONE = 0, _("None")
    LOW = 1, _("Low")
    MEDIUM = 2, _("Medium")
    HIGH = 3, _("High")
    URGENT = 4, _("Urgent")


class Conversation(models.Model):
    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="conversations")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="conversations")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(
        Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="assigned_conversations"
    )
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True, related_name="conversations")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NONE)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(default=timezone.now)
    # Set while the customer's last message is unanswered; drives "waiting longest" ordering.
    waiting_since = models.DateTimeField(null=True, blank=True)
    last_message_preview = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # How many times it was resolved: a rating rates one resolution (``Rating.resolution``).
    resolutions = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            # The inbox lists: company + status (+ assignee / team), newest activity first.
            models.Index(fields=["company", "status", "-last_activity_at"], name="conv_inbox_all"),
            models.Index(fields=["company", "assignee", "status", "-last_activity_at"], name="conv_inbox_assignee"),
            models.Index(fields=["company", "team", "status", "-last_activity_at"], name="conv_inbox_team"),
            # The queue (Unassigned) in order: PostgreSQL does not take "assignee IS NULL" as a
            # fixed value of conv_inbox_assignee, so without this it walks the whole tab by
            # conv_inbox_all, filtering (75,000 resolved rows for an empty list: 100 ms).
            models.Index(
                fields=["company", "status", "-last_activity_at"],
                condition=Q(assignee__isnull=True, deleted_at__isnull=True),
                name="conv_inbox_unassigned",
            ),
            # The tab counts (sidebar, a list's total): every column they test, so an index-only
            # scan counts a tab without reading the table.
            models.Index(
                fields=["company", "status", "assignee", "team"],
                condition=Q(deleted_at__isnull=True),
                name="conv_counts",
            ),
            models.Index(fields=["contact", "channel", "status"], name="conv_by_contact"),
            models.Index(fields=["snoozed_until"], condition=Q(status="snoozed"), name="conv_snoozed_due"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.contact}"


class Direction(models.TextChoices):
    INBOUND = "in", _("From the customer")
    OUTBOUND = "out", _("To the customer")
    INTERNAL = "internal", _("Internal")


class MessageKind(models.TextChoices):
    MESSAGE = "message", _("Message")
    NOTE = "note", _("Internal note")
    SYSTEM = "system", _("System")


class Message(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="messages")
    # Denormalised from the conversation so the channel's own ids can be unique per channel.
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    direction = models.CharField(max_length=10, choices=Direction.choices)
    kind = models.CharField(max_length=10, choices=MessageKind.choices, default=MessageKind.MESSAGE)
    author_employee = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    author_contact = models.ForeignKey(Contact, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    body = models.TextField()
    # NULL, not "", for messages without a channel id: the uniqueness below skips NULLs.
    external_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    # Sent by a quick answer (an automatic reply), not by a person.
    automatic = models.BooleanField(default=False)
    # Written by a blocked contact: kept for the record, but it opened, notified and routed nothing.
    while_blocked = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    # The customer edited it in their channel: the text is the newest, earlier ones are revisions.
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # An agent's reply or note sent with an Idempotency-Key: a resend under the same key (its
    # answer was lost) finds this message instead of storing a second one. NULL without a key.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                condition=Q(external_id__isnull=False),
                name="message_external_id_unique_per_channel",
            ),
            # One message per key, per author and conversation: the database refuses the
            # second, so two resends racing each other can't both be stored.
            models.UniqueConstraint(
                fields=["conversation", "author_employee", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="message_idempotency_key_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "id"], name="msg_thread"),
            # A conversation's customer messages past a point, without the table: "unread now"
            # (reports.queries.unread_now) counts them for every open conversation.
            models.Index(
                fields=["conversation", "id"],
                condition=Q(direction="in", kind="message", while_blocked=False),
                name="msg_customer_thread",
            ),
            # The inbox's unread counts: a conversation's customer messages that count, from a
            # read marker on (queries.with_unread). Only those rows, so the range is short.
            models.Index(
                fields=["conversation", "id"],
                condition=Q(direction="in", deleted_at__isnull=True, while_blocked=False),
                name="msg_unread",
            ),
            # Mentions are in notes: whether a note is deleted or the reader's own, from a small
            # index of notes alone (queries.mentions_of), not from the million-row table.
            models.Index(fields=["id", "author_employee", "deleted_at"], condition=Q(kind="note"), name="msg_notes"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} in #{self.conversation_id}"

    def save(self, *args, **kwargs) -> None:
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            # A new message has no files until ``actions.bind_uploads`` binds some: its
            # snapshot needs no query to say so (see ``snapshots.attachments_of``).
            self.known_attachments = []

    @property
    def is_note(self) -> bool:
        return self.kind == MessageKind.NOTE

    @property
    def author_name(self) -> str:
        if self.author_employee_id:
            return self.author_employee.display_name
        if self.author_contact_id:
            return self.author_contact.own_name
        return ""


class MessageRevision(models.Model):
    """A message's text before an edit: edits never destroy what was written."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="revisions")
    body = models.TextField()
    # When this text was replaced by the next one.
    replaced_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"revision {self.pk} of message {self.message_id}"


class ConsentDecision(models.TextChoices):
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    WITHDRAWN = "withdrawn", _("Withdrawn")


class ContactConsent(models.Model):
    """One decision of a contact about a channel's consent text (personal-data processing).

    Rows are only added: the newest one per contact and channel is the state, the rest the
    history. ``text_version`` and ``text`` are what the contact was shown.
    """

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="consents")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=ConsentDecision.choices)
    text_version = models.CharField(max_length=40, blank=True)
    text = models.TextField(blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["contact", "channel", "-id"], name="consent_latest")]

    def __str__(self) -> str:
        return f"{self.decision} by contact {self.contact_id} on channel {self.channel_id}"


RATING_COMMENT_MAX_CHARS = 1000


class Rating(models.Model):
    """The customer's satisfaction survey for one resolution of a conversation (CSAT).

    Written when a conversation of a channel with the survey on is resolved (``score`` empty:
    asked), and given its score once (``actions.rate_conversation``; docs/csat.md). Who worked
    on it (``agent``: the assignee when it was resolved), ``team`` and ``channel`` are copied
    from that moment, so a later reassignment does not move the rating.
    """

    id = models.BigAutoField(primary_key=True)
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="ratings")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="ratings")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    agent = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    resolved_by = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # Which resolve of the conversation it rates (``Conversation.resolutions`` then).
    resolution = models.PositiveIntegerField()
    # When the survey was offered (the resolve); the window to answer runs from here.
    created_at = models.DateTimeField(default=timezone.now)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.CharField(max_length=RATING_COMMENT_MAX_CHARS, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "resolution"], name="rating_once_per_resolution"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=1, score__lte=5), name="rating_score_1_to_5"
            ),
        ]
        indexes = [
            models.Index(fields=["contact", "-rated_at"], condition=Q(score__isnull=False), name="rating_by_contact"),
        ]

    def __str__(self) -> str:
        return f"rating {self.score} of #{self.conversation_id} ({self.resolution})"

    @property
    def rated(self) -> bool:
        return self.score is not None


class ReadMarker(models.Model):
    """How far one employee has read one conversation; unread = customer messages after it."""

    employee = models.ForeignKey(Employee, on_delete=models.CASCADE, related_name="read_markers")
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="read_markers")
    last_read_message_id = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["employee", "conversation"], name="one_read_marker_per_employee"),
        ]

    def __str__(self) -> str:
        return f"{self.employee_id} read #{self.conversation_id} to {self.last_read_message_id}"


class Mention(models.Model):
    """An @mention in an internal note: of one employee, or of a team (all its members)."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="mentions")
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="mentions")
    employee = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="mentions")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, null=True, blank=True, related_name="mentions")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(employee__isnull=False, team__isnull=True) | Q(employee__isnull=True, team__isnull=False),
                name="mention_of_employee_or_team",
            )
        ]
        indexes = [
            models.Index(fields=["employee", "-id"], name="mention_by_employee"),
            models.Index(fields=["team", "-id"], name="mention_by_team"),
        ]

    def __str__(self) -> str:
        return f"mention in message {self.message_id}"


class CannedResponse(models.Model):
    """A saved reply, inserted with "/" in the reply box; company-wide, or one employee's own."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="canned_responses")
    # Empty: shared with the whole company (managed by admins); set: that employee's own.
    owner = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    shortcut = models.CharField(_("shortcut"), max_length=40)
    title = models.CharField(_("title"), max_length=120)
    body = models.TextField(_("text"))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["company", "owner"], name="canned_by_owner")]
        # One live shortcut per scope: the company's own list, and each employee's own list.
        constraints = [
            models.UniqueConstraint(
                fields=["company", "shortcut"],
                condition=Q(owner__isnull=True, archived_at__isnull=True),
                name="canned_shortcut_unique_company_wide",
            ),
            models.UniqueConstraint(
                fields=["owner", "shortcut"],
                condition=Q(owner__isnull=False, archived_at__isnull=True),
                name="canned_shortcut_unique_per_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class QuickAnswer(models.Model):
    """An automatic reply: when a customer's message matches a trigger phrase, it answers."""

    company = models.ForeignKey(Company, on_delete=models.PROTECT, related_name="quick_answers")
    title = models.CharField(_("title"), max_length=120)
    triggers = models.JSONField(_("trigger phrases"), default=list)
    answer = models.TextField(_("answer"))
    # The answer settles it: the conversation is resolved instead of waiting for a person.
    resolves = models.BooleanField(_("resolves the conversation"), default=False)
    enabled = models.BooleanField(_("on"), default=True)
    created_by = models.ForeignKey(Employee, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.title
