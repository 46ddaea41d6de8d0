"""The conversations app's models, by topic: core.py (contacts, channels, conversations, messages
and what hangs on them), delivery.py (the outbox), files.py (attachments and their storage).

Imported from here, as before the split; migrations name ``new_public_key``,
``attachment_path`` and ``_attachment_storage`` by this path.
"""

from .core import (
    RATING_COMMENT_MAX_CHARS,
    CannedResponse,
    Channel,
    ChannelKind,
    ConsentDecision,
    Contact,
    ContactConsent,
    ContactIdentity,
    Conversation,
    Direction,
    Mention,
    Message,
    MessageKind,
    MessageRevision,
    Priority,
    QuickAnswer,
    Rating,
    ReadMarker,
    Status,
    new_public_key,
)
from .delivery import Delivery, DeliveryStatus
from .files import Attachment, AttachmentStatus, _attachment_storage, _CurrentStorage, attachment_path

__all__ = [
    "RATING_COMMENT_MAX_CHARS",
    "Attachment",
    "AttachmentStatus",
    "CannedResponse",
    "Channel",
    "ChannelKind",
    "ConsentDecision",
    "Contact",
    "ContactConsent",
    "ContactIdentity",
    "Conversation",
    "Delivery",
    "DeliveryStatus",
    "Direction",
    "Mention",
    "Message",
    "MessageKind",
    "MessageRevision",
    "Priority",
    "QuickAnswer",
    "Rating",
    "ReadMarker",
    "Status",
    "_CurrentStorage",
    "_attachment_storage",
    "attachment_path",
    "new_public_key",
]
