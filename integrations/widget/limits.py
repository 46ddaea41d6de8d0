"""The widget's rate limits: per client address and per visitor (helpdesk/ratelimits.py names them)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

from helpdesk import ratelimits
from helpdesk.conversations.models import Channel

log = logging.getLogger(__name__)


def _visitor(channel: Channel, visitor_id: str) -> str:
    return f"{channel.pk}:{visitor_id}"


def count_new_session(address: str | None) -> None:
    """A new visitor token is about to be minted (raises ``RateLimited``)."""
    ratelimits.hit((ratelimits.WIDGET_SESSIONS_PER_ADDRESS, ratelimits.address_key(address)))


def count_resumed_session(channel: Channel, visitor_id: str, address: str | None) -> None:
    """A known visitor reopens their session: cheap, so its own and more generous limit."""
    ratelimits.hit(
        (ratelimits.WIDGET_RESUMES_PER_VISITOR, _visitor(channel, visitor_id)),
        (ratelimits.WIDGET_RESUMES_PER_ADDRESS, ratelimits.address_key(address)),
    )


@contextmanager
def message_limits(channel: Channel, visitor_id: str, address: str | None) -> Iterator[Callable[[], None]]:
    """Count one message (raises ``RateLimited``); yields the check for a new conversation.

    Give what it yields to ``actions.receive_inbound`` as ``before_new_conversation``: a new
    conversation counts only when the message really opens one, and a refusal there rolls
    the message back, so a refused message stores nothing. A refusal is logged here, once.
    """
    visitor, address = _visitor(channel, visitor_id), ratelimits.address_key(address)
    try:
        ratelimits.hit(
            (ratelimits.WIDGET_MESSAGES_PER_VISITOR, visitor),
            (ratelimits.WIDGET_MESSAGES_PER_ADDRESS, address),
        )
        yield partial(
            ratelimits.hit,
            (ratelimits.WIDGET_CONVERSATIONS_PER_VISITOR, visitor),
            (ratelimits.WIDGET_CONVERSATIONS_PER_ADDRESS, address),
        )
    except ratelimits.RateLimited as exc:
        # The one line a refused message writes (a socket has no request log).
        log.info("widget message refused: %s, visitor %s, address %s", exc.limit.name, visitor, address)
        raise


def count_upload(channel: Channel, visitor_id: str, address: str | None) -> None:
    """A visitor uploads a file (raises ``RateLimited``): counted before the file is read."""
    visitor, address = _visitor(channel, visitor_id), ratelimits.address_key(address)
    try:
        ratelimits.hit(
            (ratelimits.WIDGET_UPLOADS_PER_VISITOR, visitor),
            (ratelimits.WIDGET_UPLOADS_PER_ADDRESS, address),
        )
    except ratelimits.RateLimited as exc:
        log.info("widget upload refused: %s, visitor %s, address %s", exc.limit.name, visitor, address)
        raise
