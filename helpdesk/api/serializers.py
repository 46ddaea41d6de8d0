"""Documented shapes of the conversation and message dicts the API shares with events.

The dicts are built once, in ``conversations.snapshots``; these serializers describe them
for the OpenAPI schema and render through the same functions (a test keeps the declared
fields and the built keys equal).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from helpdesk.conversations import csat
from helpdesk.conversations.models import (
    AttachmentStatus,
    ChannelKind,
    DeliveryStatus,
    Direction,
    MessageKind,
    Priority,
    Status,
)
from helpdesk.conversations.snapshots import attachment_data, conversation_summary, message_data


class ConversationOut(serializers.Serializer):
    id = serializers.IntegerField()
    company_id = serializers.IntegerField()
    channel_id = serializers.IntegerField()
    channel_kind = serializers.ChoiceField(choices=ChannelKind.choices)
    channel_name = serializers.CharField()
    contact_id = serializers.IntegerField()
    contact_name = serializers.CharField(help_text=_("The contact's own name or address; empty when unknown."))
    status = serializers.ChoiceField(choices=Status.choices)
    assignee_id = serializers.IntegerField(allow_null=True)
    assignee_name = serializers.CharField(allow_null=True)
    team_id = serializers.IntegerField(allow_null=True)
    priority = serializers.ChoiceField(choices=Priority.choices)
    snoozed_until = serializers.DateTimeField(allow_null=True)
    last_activity_at = serializers.DateTimeField(allow_null=True)
    waiting_since = serializers.DateTimeField(
        allow_null=True, help_text=_("Since when the customer's last message is unanswered.")
    )
    preview = serializers.CharField()
    deleted = serializers.BooleanField()

    def to_representation(self, instance):
        return conversation_summary(instance)


class RatingOut(serializers.Serializer):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    resolution = serializers.IntegerField(help_text=_("Which resolve of the conversation it rates (1 = the first)."))
    rating = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(help_text=_("The customer's comment; may be empty."))
    agent_id = serializers.IntegerField(allow_null=True, help_text=_("Who it was assigned to when it was resolved."))
    team_id = serializers.IntegerField(allow_null=True)
    channel_id = serializers.IntegerField()
    rated_at = serializers.DateTimeField()


class ConversationDetailOut(ConversationOut):
    resolutions = serializers.IntegerField(help_text=_("How many times it was resolved."))
    ratings = RatingOut(many=True, help_text=_("The customer's ratings of its resolutions (CSAT), oldest first."))

    def to_representation(self, instance):
        return {
            **conversation_summary(instance),
            "resolutions": instance.resolutions,
            "ratings": csat.conversation_ratings(instance),
        }


class ConversationRowOut(ConversationOut):
    unread = serializers.IntegerField(help_text=_("The customer's messages after your read marker."))

    def to_representation(self, instance):
        return {**conversation_summary(instance), "unread": getattr(instance, "unread", 0)}


class TrashedConversationOut(ConversationOut):
    deleted_at = serializers.DateTimeField()
    deleted_by_name = serializers.CharField(allow_null=True)

    def to_representation(self, instance):
        return {
            **conversation_summary(instance),
            "deleted_at": instance.deleted_at.isoformat() if instance.deleted_at else None,
            "deleted_by_name": instance.deleted_by.display_name if instance.deleted_by_id else None,
        }


class DeliveryOut(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(
        choices=DeliveryStatus.choices,
        help_text=_(
            "queued and sending: on its way; sent; failed: not delivered (see last_error), may be retried; unknown: "
            "the send was interrupted and may or may not have arrived, so it waits for a person to retry it."
        ),
    )
    attempts = serializers.IntegerField(help_text=_("Attempts made in the current round."))
    next_attempt_at = serializers.DateTimeField(help_text=_("While queued: not sent before this time."))
    last_error = serializers.CharField(help_text=_("The provider's words for the last failure; empty if none."))
    sent_at = serializers.DateTimeField(allow_null=True)


class AttachmentOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text=_("The name the sender gave the file."))
    content_type = serializers.CharField(help_text=_("What the file is by its content (never by its name)."))
    size = serializers.IntegerField(allow_null=True, help_text=_("Bytes; while being fetched, what the provider said."))
    status = serializers.ChoiceField(
        choices=AttachmentStatus.choices,
        help_text=_(
            "ready; pending: a customer's file still being fetched from their channel; refused: over a limit "
            "(size, type), the customer was told; failed: the channel could not give it."
        ),
    )
    error = serializers.CharField(help_text=_("Why it was refused or could not be fetched; empty if ready."))
    image = serializers.BooleanField(help_text=_("An image shown inline; any other file is a download."))
    url = serializers.CharField(
        allow_null=True,
        help_text=_(
            "A signed link to the file, good for a few hours and only for those who may see the conversation "
            "(send your session or API key with it); null until the file is ready."
        ),
    )

    def to_representation(self, instance):
        return attachment_data(instance)


class MessageOut(serializers.Serializer):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    direction = serializers.ChoiceField(choices=Direction.choices)
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    author_name = serializers.CharField()
    author_employee_id = serializers.IntegerField(allow_null=True)
    body = serializers.CharField(help_text=_("Empty for a deleted message unless your role may see deleted messages."))
    created_at = serializers.DateTimeField()
    edited_at = serializers.DateTimeField(
        allow_null=True, help_text=_("When the customer last edited it in their channel; the text is the newest.")
    )
    deleted = serializers.BooleanField()
    deleted_at = serializers.DateTimeField(allow_null=True)
    deleted_by_name = serializers.CharField(allow_null=True)
    automatic = serializers.BooleanField(help_text=_("Sent by a quick answer, not by a person."))
    while_blocked = serializers.BooleanField(
        help_text=_("Written while the contact was blocked: kept, but it opened and notified nothing.")
    )
    delivery = DeliveryOut(
        allow_null=True,
        help_text=_("How far a message to the customer got on a channel with an outside API; null for the others."),
    )
    attachments = AttachmentOut(
        many=True, help_text=_("The message's files; none for a deleted message unless your role may see it.")
    )

    def to_representation(self, instance):
        return message_data(instance, reveal_deleted=self.context.get("reveal_deleted", True))


class CountsOut(serializers.Serializer):
    mine = serializers.IntegerField()
    unassigned = serializers.IntegerField()
    all = serializers.IntegerField()
    mentions = serializers.IntegerField(
        help_text=_("Conversations with a mention of you or your team you haven't read.")
    )
