"""Polling mode: getUpdates long polls, one after the other, for a bounded run under the
channel's lease.

Each run takes the lease on the channel's ``PollState`` (one poller per channel across all
workers) and then, for ``TELEGRAM_POLL_RUN_SECONDS``, asks Telegram for updates from the stored
offset, each request waiting up to ``TELEGRAM_POLL_TIMEOUT`` seconds and answered as soon as an
update arrives, so a message reaches the inbox within a moment, not at the next beat tick.
Every update is stored through ``inbound`` before the offset is advanced past it: a run that
dies between the two replays that update next time, and the replay stores nothing twice (the
message's ``external_id``). Between two requests the run renews its lease and checks that the
channel still polls with the same token. One open ``Bot`` (one connection pool) serves the
whole run (``client.call``).

A run ends when its time is up (the task then hands over to the next run at once), when the
channel stops polling (disabled, removed, switched to a webhook, a new token), when the lease
was taken over, on the worker's shutdown (the waiting request is cancelled; its updates are
simply asked for again), or when Telegram fails: while Telegram can't be reached the channel
backs off (doubling, at most ``MAX_BACKOFF`` seconds, or Telegram's ``retry_after``); a refused
token stops polling that channel and marks it broken until it is saved again
(``health.token_refused``: admins are told once).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from datetime import timedelta

import telegram
import telegram.warnings
from django.conf import settings
from django.utils import timezone

from helpdesk.conversations.models import Channel, ChannelKind
from integrations import lease

from . import client, health, inbound
from .client import ALLOWED_UPDATES
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
    claimed = []
    for channel in polling_channels().only("pk"):
        state, _ = PollState.objects.get_or_create(channel=channel)
        holder = _claim(state)
        if holder:
            claimed.append((channel.pk, holder))
    return claimed


def claim(channel_id: int) -> str | None:
    """One channel's next run, leased now if the channel is due (as above): a run that ended
    on time hands over to the next without waiting for beat."""
    state = PollState.objects.filter(channel__in=polling_channels().filter(pk=channel_id)).first()
    return _claim(state) if state is not None else None


def _claim(state: PollState) -> str | None:
    if state.stopped_at is not None or (state.retry_at and state.retry_at > timezone.now()):
        return None
    holder = lease.new_holder()
    if lease.take(PollState, state.pk, holder=holder, seconds=settings.TELEGRAM_POLL_TIMEOUT + 60):
        return holder
    return None


def poll(channel_id: int, *, holder: str | None = None, run_seconds: float | None = None) -> int | None:
    """Poll one channel for a run; the number of updates handled, or None if it did not run.

    A run is at least one getUpdates, then more, one after the other, for ``run_seconds``
    (``TELEGRAM_POLL_RUN_SECONDS``), each waiting at most ``TELEGRAM_POLL_TIMEOUT`` seconds and
    never past the end of the run. It ends early when the channel stops polling (disabled,
    removed, switched to a webhook, its token changed), when the token is refused, when
    Telegram fails (the backoff is recorded), when the lease is lost, or on shutdown.
    """
    holder = holder or lease.new_holder()
    timeout = settings.TELEGRAM_POLL_TIMEOUT
    run_seconds = settings.TELEGRAM_POLL_RUN_SECONDS if run_seconds is None else run_seconds
    deadline = time.monotonic() + run_seconds
    state, _ = PollState.objects.get_or_create(channel_id=channel_id)
    if not lease.take(PollState, state.pk, holder=holder, seconds=timeout + 60):
        return None
    try:
        channel = polling_channels().filter(pk=channel_id).first()
        state.refresh_from_db()
        if channel is None or state.stopped_at is not None:
            return None
        token = _token(channel)
        handled = 0
        while True:
            wait = min(timeout, math.ceil(max(deadline - time.monotonic(), 0)))
            got = _poll(channel, state, holder, token, wait)
            if got is None:
                break
            handled += got
            if time.monotonic() >= deadline or client.stopping.is_set() or not _carry_on(channel, token, holder):
                break
        return handled
    finally:
        lease.give_back(PollState, state.pk, holder=holder)


def _token(channel: Channel) -> str:
    return channel.secret_values().get("bot_token", "")


def _carry_on(channel: Channel, token: str, holder: str) -> bool:
    """Between two getUpdates: the lease renewed, the channel still polling with the same token."""
    state = PollState.objects.filter(channel=channel).only("pk", "stopped_at").first()
    if state is None or state.stopped_at is not None:
        return False
    if not lease.take(PollState, state.pk, holder=holder, seconds=settings.TELEGRAM_POLL_TIMEOUT + 60):
        return False  # taken over (this run was thought dead): the new holder polls
    current = polling_channels().filter(pk=channel.pk).first()
    return current is not None and _token(current) == token


async def _get_updates(open_bot: telegram.Bot, offset: int, timeout: int) -> list[dict]:
    updates = await open_bot.get_updates(
        offset=offset or None, limit=BATCH, timeout=timeout, allowed_updates=ALLOWED_UPDATES
    )
    return [update.to_dict() for update in updates]


def _poll(channel: Channel, state: PollState, holder: str, token: str, timeout: int) -> int | None:
    """One getUpdates and the updates it brought, stored; None when the run should stop."""
    mine = PollState.objects.filter(pk=state.pk, lease_holder=holder)
    try:
        updates = client.call(token, lambda open_bot: _get_updates(open_bot, state.offset, timeout), interruptible=True)
    except client.Interrupted:
        return None  # the worker is shutting down; the offset is untouched, nothing is lost
    except telegram.error.InvalidToken:
        health.token_refused(channel, mine)  # stops polling, marks the channel broken, tells admins (once)
        return None
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
        return None
    for update in updates:
        inbound.receive_update(channel, update)
        # Only after the update is stored: a run that dies here replays it, harmlessly.
        lease_until = timezone.now() + timedelta(seconds=settings.TELEGRAM_POLL_TIMEOUT + 60)
        state.offset = int(update["update_id"]) + 1
        mine.update(offset=state.offset, lease_until=lease_until)
    if state.failures or state.retry_at or state.last_error:
        mine.update(failures=0, retry_at=None, last_error="")
        state.failures, state.retry_at, state.last_error = 0, None, ""
    return len(updates)


def restart(channel: Channel) -> None:
    """The channel was saved: a stopped or backing-off poller may try again now."""
    PollState.objects.filter(channel=channel).update(stopped_at=None, failures=0, retry_at=None, last_error="")
