"""Outbound delivery: the outbox row of each customer-visible message on a channel with an
outside API, and the steps the worker takes to send it. The rules are in ``docs/channels.md``
("Delivery"); in short:

- A reply or automatic answer on a channel whose adapter ``delivers`` gets a ``Delivery`` in
  the same transaction as the message (never a note or a system line).
- The worker claims a queued, due delivery with a compare-and-swap ``update()`` (queued →
  sending), calls the adapter outside any transaction, then records sent or the failure.
- A retryable failure is queued again after a backoff (or the provider's ``retry_after``) until
  ``DELIVERY_MAX_ATTEMPTS``; a permanent one fails at once. A person may retry a failed one.
- A claim older than ``DELIVERY_SENDING_TIMEOUT`` (its worker died mid-send) is queued again if
  the adapter's provider drops repeats (``idempotent_sends``); otherwise it becomes ``unknown``
  and waits for a person: it is never resent blindly. So does a failure the adapter marks
  ``outcome_unknown`` (no answer came, but the request may have reached the provider).
- A delivery an adapter sends in several parts (a Telegram reply with files) keeps each part
  that went out (``record_delivery_part``): a retry sends only the rest.
- Order: a delivery is not claimed while an earlier one of its conversation is queued, sending
  or unknown. A failed one holds nothing back: it is final until a person retries it.
- A reply deleted while its delivery is still queued is never sent: the deletion fails the
  delivery in its own transaction (``cancel_unsent``), with a reason the thread shows, so the
  worker's claim (queued only) finds nothing and the next message is not held back by it.
  One already being sent (or unknown) is left as it is: it may have reached the customer.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.errors import ActionError
from helpdesk.events import log as events

from .. import access
from ..adapters import DeliveryError, adapter_for
from ..models import Channel, Conversation, Delivery, DeliveryStatus, Direction, Message, MessageKind
from ..snapshots import delivery_data, message_data, preview_of
from ._common import _locked

log = logging.getLogger(__name__)

# An earlier delivery in one of these holds the later ones of its conversation back.
HOLDS_BACK = (DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN)
# The longest backoff between two automatic attempts (the provider's retry_after may ask more).
RETRY_MAX_SECONDS = 3600
ERROR_MAX_CHARS = 500


def delivers(channel: Channel) -> bool:
    """Do this channel's customer messages leave through the worker?"""
    try:
        return adapter_for(channel.kind).delivers
    except LookupError:  # a kind with no adapter registered sends nothing through the worker
        return False


def _say_automatically(conversation: Conversation, body: str, **event_payload) -> Message:
    """An automatic message to the customer (a quick answer, a survey, a refused file's notice):
    from nobody in particular, it leaves like any reply and moves the conversation's activity,
    but the customer still waits for a person (``waiting_since`` stays). One event,
    ``message.created``, with ``event_payload`` beside the message. Inside the caller's transaction.
    """
    now = timezone.now()
    message = Message.objects.create(
        conversation=conversation,
        channel_id=conversation.channel_id,
        direction=Direction.OUTBOUND,
        kind=MessageKind.MESSAGE,
        body=body,
        automatic=True,
        created_at=now,
    )
    message.conversation = conversation
    _queue_delivery(message, conversation.channel)
    conversation.last_activity_at = now
    conversation.last_message_preview = preview_of(body)
    conversation.save(update_fields=["last_activity_at", "last_message_preview", "updated_at"])
    events.record(conversation, "message.created", message=message_data(message), **event_payload)
    return message


def _queue_delivery(message: Message, channel: Channel) -> Delivery | None:
    """The outbox row for a customer-visible message, inside the writer's transaction.

    Called before the ``message.created`` event is recorded, so the event carries the
    delivery (queued) and its fan-out after commit queues the worker.
    """
    if message.kind != MessageKind.MESSAGE or message.direction != Direction.OUTBOUND or not delivers(channel):
        return None
    # Setting delivery.message also caches message.delivery: message_data shows it, no query.
    return Delivery.objects.create(
        message=message,
        channel=channel,
        conversation_id=message.conversation_id,
        created_at=message.created_at,
        next_attempt_at=message.created_at,
    )


def cancel_unsent(message: Message, conversation: Conversation, *, by: Employee) -> Delivery | None:
    """A message is being deleted (inside the writer's transaction, the conversation locked):
    its delivery, if still queued, fails now and is never sent. The failed delivery, or None."""
    now = timezone.now()
    cancelled = Delivery.objects.filter(message=message, status=DeliveryStatus.QUEUED).update(
        status=DeliveryStatus.FAILED,
        claimed_at=None,
        last_error=_("Not sent: the message was deleted before it left.")[:ERROR_MAX_CHARS],
        updated_at=now,
    )
    if not cancelled:
        return None
    delivery = Delivery.objects.get(message=message)
    # Its fan-out after commit queues the next delivery of the conversation, as a failure does.
    _record_event(conversation, delivery, actor=by)
    return delivery


@transaction.atomic(durable=True)
def retry_delivery(delivery: Delivery, *, by: Employee) -> Delivery:
    """A person sends a failed (or unknown) message again: queued now, with a fresh round of attempts."""
    access.require(by, Perm.REPLY)
    conversation = _locked(delivery.conversation)
    current = Delivery.objects.select_for_update().select_related("message").get(pk=delivery.pk)
    if current.status not in (DeliveryStatus.FAILED, DeliveryStatus.UNKNOWN):
        raise ActionError(_("Only a message that was not delivered can be sent again."), code="not_retryable")
    if current.message.deleted_at is not None:
        raise ActionError(_("A deleted message can't be sent."), code="deleted")
    now = timezone.now()
    current.status, current.attempts, current.next_attempt_at = DeliveryStatus.QUEUED, 0, now
    current.claimed_at, current.last_error = None, ""
    current.save(update_fields=["status", "attempts", "next_attempt_at", "claimed_at", "last_error", "updated_at"])
    _record_event(conversation, current, actor=by)
    return current


# --- The worker's steps ----------------------------------------------------------------------


def send_delivery(delivery_id: int) -> str | None:
    """One attempt at one delivery; the resulting status, or None when there was nothing to do.

    Not one transaction, unlike the other actions: the provider is called between the claim
    and the record, outside any transaction, so no row lock is held over the network.
    Replayed or early tasks are no-ops: only a queued, due delivery with nothing earlier on its
    way in its conversation can be claimed, and only one worker wins the claim.
    """
    delivery = _claim(delivery_id)
    if delivery is None:
        return None
    try:
        provider_id = adapter_for(delivery.channel.kind).send(delivery)
    except DeliveryError as error:
        return _record_failure(delivery, error)
    except Exception as error:
        # A bug or an error the adapter did not classify: retried within the bounded attempts.
        # Only the type is kept: an exception's text may hold a URL with a token in it.
        log.exception("delivery %s: the adapter raised", delivery_id)
        return _record_failure(delivery, DeliveryError(f"internal error ({type(error).__name__})", permanent=False))
    return _record_sent(delivery, str(provider_id))


def _claim(delivery_id: int) -> Delivery | None:
    now = timezone.now()
    earlier = Delivery.objects.filter(
        conversation_id=OuterRef("conversation_id"), pk__lt=OuterRef("pk"), status__in=HOLDS_BACK
    )
    claimed = (
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.QUEUED, next_attempt_at__lte=now)
        .exclude(Exists(earlier))
        .update(status=DeliveryStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1, updated_at=now)
    )
    if not claimed:
        return None
    return Delivery.objects.select_related("message", "channel").get(pk=delivery_id)


def backoff(attempts: int) -> float:
    """Seconds before the next automatic attempt after ``attempts`` failed ones: doubling, capped."""
    return min(settings.DELIVERY_RETRY_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)


@transaction.atomic(durable=True)
def _record_sent(delivery: Delivery, provider_id: str) -> str:
    conversation = _locked(Conversation(pk=delivery.conversation_id))
    now = timezone.now()
    # Whatever happened meanwhile (a slow send the sweeper took for lost), it did arrive.
    done = (
        Delivery.objects.filter(pk=delivery.pk)
        .exclude(status=DeliveryStatus.SENT)
        .update(
            status=DeliveryStatus.SENT,
            provider_message_id=provider_id[:255],
            sent_at=now,
            last_error="",
            updated_at=now,
        )
    )
    if done:
        _record_event(conversation, Delivery.objects.get(pk=delivery.pk))
    return DeliveryStatus.SENT


@transaction.atomic(durable=True)
def _record_failure(delivery: Delivery, error: DeliveryError) -> str:
    conversation = _locked(Conversation(pk=delivery.conversation_id))
    now = timezone.now()
    if error.outcome_unknown and not error.permanent and not _idempotent(delivery.channel):
        # It may have arrived: never resent blindly, a person decides (as for a stale claim).
        status, at = DeliveryStatus.UNKNOWN, now
    elif error.permanent or delivery.attempts >= settings.DELIVERY_MAX_ATTEMPTS:
        status, at = DeliveryStatus.FAILED, now
    else:
        wait = error.retry_after if error.retry_after is not None else backoff(delivery.attempts)
        status, at = DeliveryStatus.QUEUED, now + timedelta(seconds=max(float(wait), 0.0))
    # Only our own claim: if the sweeper re-queued it meanwhile, that attempt decides.
    done = Delivery.objects.filter(
        pk=delivery.pk, claimed_at=delivery.claimed_at, status__in=[DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN]
    ).update(
        status=status,
        next_attempt_at=at,
        claimed_at=None,
        last_error=(error.message or "")[:ERROR_MAX_CHARS],
        updated_at=now,
    )
    if not done:
        return Delivery.objects.get(pk=delivery.pk).status
    _record_event(conversation, Delivery.objects.get(pk=delivery.pk))
    return status


def record_delivery_part(delivery: Delivery, key: str, provider_id: str) -> None:
    """One part of a delivery sent in several (a reply with files) went out: kept at once.

    Called by an adapter between its sends, outside any transaction. A later attempt (a
    retry, a person's Retry) finds the part in ``delivery.parts`` and does not send it again.
    A part is a fact about the provider, so it is kept whatever the delivery's status is now
    (the sweeper may have taken a slow send for lost meanwhile). No event: the thread shows
    the delivery's status, not its parts.
    """
    with transaction.atomic():
        row = Delivery.objects.select_for_update().only("pk", "parts").get(pk=delivery.pk)
        parts = {**(row.parts or {}), str(key): str(provider_id)}
        Delivery.objects.filter(pk=delivery.pk).update(parts=parts)
    delivery.parts = parts


def expire_stale_claims(*, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Claims whose worker never reported back: queued again (idempotent adapter) or ``unknown``.

    Returns the ids queued again.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.DELIVERY_SENDING_TIMEOUT)
    stale = list(
        Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=cutoff)
        .select_related("channel")
        .order_by("pk")[:limit]
    )
    requeued = []
    for delivery in stale:
        if _expire_claim(delivery, now=now):
            requeued.append(delivery.pk)
    return requeued


def _idempotent(channel: Channel) -> bool:
    """Does the channel's provider drop a repeated send with the same key (sending again is safe)?"""
    try:
        return adapter_for(channel.kind).idempotent_sends
    except LookupError:
        return False


@transaction.atomic(durable=True)
def _expire_claim(delivery: Delivery, *, now: datetime) -> bool:
    conversation = _locked(Conversation(pk=delivery.conversation_id))
    idempotent = _idempotent(delivery.channel)
    if idempotent:  # the provider drops a repeat with the same key: sending again is safe
        changes = {"status": DeliveryStatus.QUEUED, "next_attempt_at": now, "claimed_at": None}
    else:
        # An earlier attempt's error is not why it is unknown now: the thread says "interrupted".
        changes = {"status": DeliveryStatus.UNKNOWN, "last_error": ""}
    done = Delivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.SENDING, claimed_at=delivery.claimed_at
    ).update(**changes, updated_at=now)
    if done:
        _record_event(conversation, Delivery.objects.get(pk=delivery.pk))
    return bool(done) and idempotent


def _record_event(conversation: Conversation, delivery: Delivery, *, actor: Employee | None = None) -> None:
    events.record(
        conversation, "delivery.updated", actor=actor, message_id=delivery.message_id, delivery=delivery_data(delivery)
    )
