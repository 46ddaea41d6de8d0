"""Reads of contacts' consent to a channel's processing of their personal data (``ContactConsent``)."""

from __future__ import annotations

from typing import Any

from .models import Contact, ContactConsent


def latest(*, channel_id: int, external_contact_id: str) -> ContactConsent | None:
    """The newest decision of whoever has this id on the channel; None if they never decided (or are unknown)."""
    return (
        ContactConsent.objects.filter(
            channel_id=channel_id,
            contact__identities__channel_id=channel_id,
            contact__identities__external_id=external_contact_id,
        )
        .order_by("-pk")
        .first()
    )


def consent_list(contact: Contact | int) -> list[dict[str, Any]]:
    """Each channel's newest decision of the contact, newest first: what the profile shows."""
    contact_id = contact.pk if isinstance(contact, Contact) else contact
    rows = ContactConsent.objects.filter(contact_id=contact_id).select_related("channel").order_by("-pk")
    seen: set[int] = set()
    out = []
    for row in rows:
        if row.channel_id in seen:
            continue
        seen.add(row.channel_id)
        out.append(
            {
                "channel_id": row.channel_id,
                "channel_name": row.channel.name,
                "decision": row.decision,
                "text_version": row.text_version,
                "at": row.at.isoformat(),
            }
        )
    return out
