"""The contact profile beside a conversation in the inbox: who the customer is, and their history."""

from __future__ import annotations

from typing import Any

from helpdesk.accounts.models import Employee

from . import access, csat
from .consents import consent_list
from .models import Contact, ContactIdentity, Conversation
from .snapshots import contact_card

# Enough to recognise a regular customer; the contacts API lists them all.
PREVIOUS_CONVERSATIONS_MAX = 20


def contact_profile(viewer: Employee, conversation: Conversation) -> dict[str, Any]:
    """The card, the channel identities, the contact's other conversations and ratings the viewer may see."""
    contact = Contact.objects.select_related("blocked_by").get(pk=conversation.contact_id)
    identities = ContactIdentity.objects.filter(contact=contact).select_related("channel").order_by("pk")
    others = (
        access.visible_conversations(viewer)
        .filter(contact=contact)
        .exclude(pk=conversation.pk)
        .select_related("channel")
        .order_by("-last_activity_at", "-pk")[:PREVIOUS_CONVERSATIONS_MAX]
    )
    return {
        **contact_card(contact),
        "consents": consent_list(contact),
        "ratings": csat.contact_ratings(viewer, contact.pk),
        "identities": [
            {"channel_name": i.channel.name, "channel_kind": i.channel.kind, "external_id": i.external_id}
            for i in identities
        ],
        "conversations": [
            {
                "id": c.pk,
                "status": c.status,
                "channel_name": c.channel.name,
                "last_activity_at": c.last_activity_at.isoformat(),
                "preview": c.last_message_preview,
            }
            for c in others
        ],
    }
