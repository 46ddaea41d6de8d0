"""The one writer: every change to a conversation goes through a function here.

Each action is one transaction and records what happened in the event log; side effects
(sockets, outbound delivery) leave only after commit.

The functions live in topic modules (inbound, editing, consent, contacts, replies, workflow,
handout, deletion, reading, csat; shared helpers in _common); callers use them from here: ``actions.receive_message``.
"""

from helpdesk.errors import ActionError

from ._common import WakeReason
from .attachments import bind_uploads, upload_attachment, upload_customer_attachment
from .consent import record_consent
from .contacts import (
    BLOCK_REASON_MAX_CHARS,
    CONTACT_ATTRIBUTE_KEY_MAX_CHARS,
    CONTACT_ATTRIBUTE_VALUE_MAX_CHARS,
    CONTACT_ATTRIBUTES_MAX_BYTES,
    CONTACT_ATTRIBUTES_MAX_KEYS,
    CONTACT_EVENTS_MAX,
    PHONE_RE,
    block_contact,
    clean_contact_attributes,
    contact_state,
    unblock_contact,
    update_contact,
)
from .csat import rate_conversation
from .deletion import delete_conversation, delete_message, restore_conversation, restore_message
from .delivery import delivers, expire_stale_claims, record_delivery_part, retry_delivery, send_delivery
from .editing import edit_inbound
from .handout import HAND_OUT_BATCH, hand_out, release_assigned
from .inbound import receive_inbound, receive_message
from .reading import mark_read
from .replies import add_note, post_reply
from .workflow import assign, reopen, resolve, set_priority, snooze, wake

__all__ = [
    "BLOCK_REASON_MAX_CHARS",
    "CONTACT_ATTRIBUTES_MAX_BYTES",
    "CONTACT_ATTRIBUTES_MAX_KEYS",
    "CONTACT_ATTRIBUTE_KEY_MAX_CHARS",
    "CONTACT_ATTRIBUTE_VALUE_MAX_CHARS",
    "CONTACT_EVENTS_MAX",
    "HAND_OUT_BATCH",
    "PHONE_RE",
    "ActionError",
    "WakeReason",
    "add_note",
    "assign",
    "bind_uploads",
    "block_contact",
    "clean_contact_attributes",
    "contact_state",
    "delete_conversation",
    "delete_message",
    "delivers",
    "edit_inbound",
    "expire_stale_claims",
    "hand_out",
    "mark_read",
    "post_reply",
    "rate_conversation",
    "receive_inbound",
    "receive_message",
    "record_consent",
    "record_delivery_part",
    "release_assigned",
    "reopen",
    "resolve",
    "restore_conversation",
    "restore_message",
    "retry_delivery",
    "send_delivery",
    "set_priority",
    "snooze",
    "unblock_contact",
    "update_contact",
    "upload_attachment",
    "upload_customer_attachment",
    "wake",
]
