"""A contact accepts, declines or withdraws consent to a channel's processing of their personal data."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.errors import ActionError
from helpdesk.events import log as events

from ..consents import consent_list
from ..inbound import ContactProfile
from ..models import Channel, ConsentDecision, Contact, ContactConsent, ContactIdentity, Conversation
from ..snapshots import contact_card
from ._common import _check_storable
from .contacts import CONTACT_EVENTS_MAX
from .inbound import _contact_for, _profile_defaults

VERSION_MAX_CHARS = ContactConsent._meta.get_field("text_version").max_length


@transaction.atomic(durable=True)
def record_consent(
    *,
    channel: Channel,
    external_contact_id: str,
    decision: str,
    text_version: str = "",
    text: str = "",
    profile: ContactProfile | None = None,
) -> ContactConsent | None:
    """Record one decision of the person with this id on the channel; None when nothing changed.

    Accepting makes the contact if they are new (from ``profile``), so their held messages can
    follow. Declining or withdrawing by someone we don't know records nothing and makes no
    contact: a person who said no leaves no trace an agent sees. The same decision again (a
    double click, a replayed update; for an acceptance, of the same text version) is a no-op.
    Open inboxes showing the contact hear it (``contact.updated`` with the consents).
    """
    if decision not in ConsentDecision.values:
        raise ActionError(_("Unknown consent decision."), code="bad_decision", field="decision")
    _check_storable(external_contact_id, field="external_contact_id")
    text = _check_storable(text or "", field="text")
    text_version = _check_storable(str(text_version or ""), field="text_version")[:VERSION_MAX_CHARS]
    if decision == ConsentDecision.ACCEPTED:
        contact = _contact_for(channel, external_contact_id, _profile_defaults(profile or ContactProfile()))
    else:
        identity = (
            ContactIdentity.objects.select_related("contact")
            .filter(channel=channel, external_id=external_contact_id)
            .first()
        )
        if identity is None:
            return None
        contact = identity.contact
    # The row receive_message locks too: a message is either before the decision or after it.
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    last = ContactConsent.objects.filter(contact=contact, channel=channel).order_by("-pk").first()
    if last is not None and last.decision == decision:
        if decision != ConsentDecision.ACCEPTED or last.text_version == text_version:
            return None
    row = ContactConsent.objects.create(
        contact=contact, channel=channel, decision=decision, text_version=text_version, text=text, at=timezone.now()
    )
    _announce(contact)
    return row


def _announce(contact: Contact) -> None:
    conversations = (
        Conversation.objects.filter(contact=contact, deleted_at__isnull=True)
        .select_related("channel", "assignee")
        .order_by("-last_activity_at", "-pk")[:CONTACT_EVENTS_MAX]
    )
    card = {**contact_card(contact), "consents": consent_list(contact)}
    for conversation in conversations:
        conversation.contact = contact
        events.record(conversation, "contact.updated", contact=card)
