"""Contacts: correcting what we know about a customer, blocking and unblocking them."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError
from helpdesk.events import audit
from helpdesk.events import log as events

from .. import access
from ..models import Contact, Conversation
from ..snapshots import contact_card
from ._common import _UNSET, _check_storable

CONTACT_ATTRIBUTES_MAX_KEYS = 50
CONTACT_ATTRIBUTE_KEY_MAX_CHARS = 64
CONTACT_ATTRIBUTE_VALUE_MAX_CHARS = 1000
CONTACT_ATTRIBUTES_MAX_BYTES = 16 * 1024
PHONE_RE = re.compile(r"^\+?[0-9][0-9 ()\-.]{2,38}$")


def contact_state(contact: Contact) -> dict[str, Any]:
    return {"name": contact.name, "email": contact.email, "phone": contact.phone, "attributes": contact.attributes}


def _clean_contact_name(name: str) -> str:
    name = _check_storable(" ".join(str(name or "").split()), field="name")
    if len(name) > 200:
        raise ActionError(_("The name can be at most 200 characters long."), code="too_long", field="name")
    return name


def _clean_contact_email(email: str) -> str:
    email = str(email or "").strip()
    if not email:
        return ""
    try:
        if len(email) > 254:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError:
        raise ActionError(_("Enter a valid e-mail address."), code="bad_email", field="email") from None
    return email


def _clean_phone(phone: str) -> str:
    phone = " ".join(str(phone or "").split())
    if phone and not PHONE_RE.match(phone):
        raise ActionError(
            _("Enter a phone number: digits, spaces and + - ( ) . only, up to 40 characters."),
            code="bad_phone",
            field="phone",
        )
    return phone


def clean_contact_attributes(attributes: Any) -> dict[str, Any]:
    """A flat JSON object: string keys to strings, numbers, true/false or null, size-limited."""

    def refuse(message: str) -> ActionError:
        return ActionError(message, code="bad_attributes", field="attributes")

    if not isinstance(attributes, dict):
        raise refuse(_("Attributes must be an object of names to values."))
    if len(attributes) > CONTACT_ATTRIBUTES_MAX_KEYS:
        raise refuse(_("A contact can have at most %(limit)s attributes.") % {"limit": CONTACT_ATTRIBUTES_MAX_KEYS})
    for key, value in attributes.items():
        if not isinstance(key, str) or not key.strip() or len(key) > CONTACT_ATTRIBUTE_KEY_MAX_CHARS:
            raise refuse(
                _("Attribute names must be 1 to %(limit)s characters long.")
                % {"limit": CONTACT_ATTRIBUTE_KEY_MAX_CHARS}
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise refuse(_("The attribute %(name)s must be a finite number.") % {"name": key})
        if value is not None and not isinstance(value, str | int | float | bool):
            raise refuse(
                _("The attribute %(name)s must be a text, a number, true, false or null, not a list or object.")
                % {"name": key}
            )
        _check_storable(key, field="attributes")
        if isinstance(value, str):
            _check_storable(value, field="attributes")
        if isinstance(value, str) and len(value) > CONTACT_ATTRIBUTE_VALUE_MAX_CHARS:
            raise refuse(
                _("The attribute %(name)s can be at most %(limit)s characters long.")
                % {"name": key, "limit": CONTACT_ATTRIBUTE_VALUE_MAX_CHARS}
            )
    if len(json.dumps(attributes, ensure_ascii=False).encode()) > CONTACT_ATTRIBUTES_MAX_BYTES:
        raise refuse(
            _("The attributes can be at most %(limit)s KB together.") % {"limit": CONTACT_ATTRIBUTES_MAX_BYTES // 1024}
        )
    return dict(attributes)


@transaction.atomic(durable=True)
def update_contact(
    contact: Contact,
    *,
    by: Employee,
    name: str = _UNSET,
    email: str = _UNSET,
    phone: str = _UNSET,
    attributes: dict[str, Any] = _UNSET,
) -> Contact:
    """Correct what we know about a customer. ``attributes`` replaces the whole object."""
    access.require(by, Perm.MANAGE_CONTACTS)
    if contact.company_id != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    # The same row lock receive_message takes: an inbound message never sees half an edit.
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    before = contact_state(contact)
    if name is not _UNSET:
        contact.name = _clean_contact_name(name)
    if email is not _UNSET:
        contact.email = _clean_contact_email(email)
    if phone is not _UNSET:
        contact.phone = _clean_phone(phone)
    if attributes is not _UNSET:
        contact.attributes = clean_contact_attributes(attributes)
    contact.save(update_fields=["name", "email", "phone", "attributes"])
    audit.record(
        "contact.updated", company=by.company_id, actor=by, obj=contact, before=before, after=contact_state(contact)
    )
    if contact_state(contact) != before:
        _announce_contact(contact, by=by)
    return contact


# How many of a contact's conversations hear that the contact changed (the most recent ones).
CONTACT_EVENTS_MAX = 50
BLOCK_REASON_MAX_CHARS = 500


def _announce_contact(contact: Contact, *, by: Employee) -> None:
    """Tell open inboxes: a ``contact.updated`` event on each of the contact's recent conversations.

    Events travel per conversation (that is how sockets know who may see them), so every
    list row, header and profile panel showing this contact hears it.
    """
    conversations = (
        Conversation.objects.filter(contact=contact, deleted_at__isnull=True)
        .select_related("channel", "assignee")
        .order_by("-last_activity_at", "-pk")[:CONTACT_EVENTS_MAX]
    )
    card = contact_card(contact)
    for conversation in conversations:
        conversation.contact = contact
        events.record(conversation, "contact.updated", actor=by, contact=card)


def _block_state(contact: Contact) -> dict[str, Any]:
    return {
        "blocked_until": contact.blocked_until.isoformat() if contact.blocked_until else None,
        "blocked_reason": contact.blocked_reason,
    }


@transaction.atomic(durable=True)
def block_contact(contact: Contact, *, by: Employee, until: datetime | None = None, reason: str) -> Contact:
    """Block until ``until`` (None: until unblocked). Their messages are kept but open nothing."""
    access.require(by, Perm.BLOCK_CONTACTS)
    if contact.company_id != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    now = timezone.now()
    if until is not None and until <= now:
        raise ActionError(_("The block must end in the future."), code="past", field="until")
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise ActionError(_("Say why the contact is blocked."), code="no_reason", field="reason")
    if len(reason) > BLOCK_REASON_MAX_CHARS:
        raise ActionError(
            _("The reason can be at most %(limit)s characters long.") % {"limit": BLOCK_REASON_MAX_CHARS},
            code="too_long",
            field="reason",
        )
    # The row receive_message locks: a message is either before the block or after it.
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    before = _block_state(contact) if contact.is_blocked(now) else {}
    contact.blocked_at, contact.blocked_until, contact.blocked_reason, contact.blocked_by = now, until, reason, by
    contact.save(update_fields=["blocked_at", "blocked_until", "blocked_reason", "blocked_by"])
    audit.record(
        "contact.blocked", company=by.company_id, actor=by, obj=contact, before=before, after=_block_state(contact)
    )
    _announce_contact(contact, by=by)
    return contact


@transaction.atomic(durable=True)
def unblock_contact(contact: Contact, *, by: Employee) -> Contact:
    """Lift a block (also one that has run out); the contact's next message works as usual."""
    access.require(by, Perm.BLOCK_CONTACTS)
    if contact.company_id != by.company_id:
        raise ActionError(_("That belongs to another company."), code="foreign")
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    if contact.blocked_at is None:
        return contact
    before = _block_state(contact)
    contact.blocked_at, contact.blocked_until, contact.blocked_reason, contact.blocked_by = None, None, "", None
    contact.save(update_fields=["blocked_at", "blocked_until", "blocked_reason", "blocked_by"])
    audit.record("contact.unblocked", company=by.company_id, actor=by, obj=contact, before=before)
    _announce_contact(contact, by=by)
    return contact
