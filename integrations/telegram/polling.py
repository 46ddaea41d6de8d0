"""Polling mode: one getUpdates long poll per run, under the channel's lease.

Each run takes the lease on the channel's ``PollState`` (one poller per channel across all
workers), asks Telegram for updates from the stored offset, waiting up to
``TELEGRAM_POLL_TIMEOUT`` seconds, and stores each one through ``inbound`` before advancing the
offset past it. A run that dies between the two replays that update next time, and the replay
stores nothing twice (the message's ``external_id``). While Telegram can't be reached the
channel backs off (doubling, at most ``MAX_BACKOFF`` seconds, or Telegram's ``retry_after``); a
refused token stops polling that channel and marks it broken until it is saved again
(``health.token_refused``).
"""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta

import telegram
import telegram.warnings
from asgiref.sync import async_to_sync
from django.conf import settings
from django.utils import timezone

from helpdesk.conversations.models import Channel, ChannelKind
from integrations import lease

from . import health, inbound
from .client import ALLOWED_UPDATES, bot
from .models import PollState
from .outbound import scrub

log = logging.getLogger(__name__)
MAX_BACKOFF = 300
BATCH = 100


def polling_channels():
    """Enabled Telegram channels in polling mode."""
    return Channel.objects.filter(
        kind=ChannelKind.TELEGRAM, archived_at__isnull=True, removed_at__isnull=True, settings__mode="polling"
    )


def claim_due_channels() -> list[tuple[int, str]]:
    """Polling channels with no poll running or queued, not stopped, not backing off.

    Each is leased at once to a new holder, which the queued poll then uses: a poll waiting in
    the queue is not queued again by the next beat, and one that is lost frees its channel
    when the lease runs out.
    """
    now = timezone.now()
    claimed = []
    for channel in polling_channels().only("pk"):
        state, _ = PollState.objects.get_or_create(channel=channel)
        if state.stopped_at is not None or (state.retry_at and state.retry_at > now):
            continue
        holder = lease.new_holder()
        if lease.take(PollState, state.pk, holder=holder, seconds=settings.TELEGRAM_POLL_TIMEOUT + 60):
            claimed.append((channel.pk, holder))
    return claimed


async def _get_updates(token: str, offset: int, timeout: int) -> list[dict]:
    client = bot(token)
    try:
        updates = await client.get_updates(
            offset=offset or None, limit=BATCH, timeout=timeout, allowed_updates=ALLOWED_UPDATES
        )
    finally:
        await client.shutdown()
    return [update.to_dict() for update in updates]


def poll(channel_id: int, *, holder: str | None = None) -> int | None:
    """One long poll for one channel; the number of updates handled, or None if it did not run."""
    holder = holder or lease.new_holder()
    timeout = settings.TELEGRAM_POLL_TIMEOUT
    state, _ = PollState.objects.get_or_create(channel_id=channel_id)
    if not lease.take(PollState, state.pk, holder=holder, seconds=timeout + 60):
        return None
    try:
        channel = polling_channels().filter(pk=channel_id).first()
        state.refresh_from_db()
        if channel is None or state.stopped_at is not None:
            return None
        return _poll(channel, state, holder, timeout)
    finally:
        lease.give_back(PollState, state.pk, holder=holder)


def _poll(channel: Channel, state: PollState, holder: str, timeout: int) -> int:
    token = channel.secret_values().get("bot_token", "")
    mine = PollState.objects.filter(pk=state.pk, lease_holder=holder)
    try:
        updates = async_to_sync(_get_updates)(token, state.offset, timeout)
    except telegram.error.InvalidToken:
        health.token_refused(channel, mine)  # stops polling, marks the channel broken, tells admins (once)
        return 0
    except telegram.error.TelegramError as exc:  # unreachable, timed out, 429, 409 (a webhook is set)
        failures = state.failures + 1
        wait = min(2 ** min(failures, 10), MAX_BACKOFF)
        if isinstance(exc, telegram.error.RetryAfter):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", telegram.warnings.PTBDeprecationWarning)
                after = exc.retry_after
            wait = after.total_seconds() if isinstance(after, timedelta) else float(after)
        message = scrub(exc.message, token)[:500]
        log.warning("telegram channel %s: getUpdates failed (%s); next try in %ss", channel.pk, message, wait)
        mine.update(failures=failures, retry_at=timezone.now() + timedelta(seconds=wait), last_error=message)
        return 0
    for update in updates:
        inbound.receive_update(channel, update)
        # Only after the update is stored: a run that dies here replays it, harmlessly.
        mine.update(offset=int(update["update_id"]) + 1, lease_until=timezone.now() + timedelta(seconds=timeout + 60))
    mine.update(failures=0, retry_at=None, last_error="")
    return len(updates)


def restart(channel: Channel) -> None:
    """The channel was saved: a stopped or backing-off poller may try again now."""
    PollState.objects.filter(channel=channel).update(stopped_at=None, failures=0, retry_at=None, last_error="")
