"""The Celery side of polling mode: bounded poll runs that hand over to each other.

``poll_telegram`` polls one channel for ``TELEGRAM_POLL_RUN_SECONDS`` (getUpdates after
getUpdates, integrations/telegram/polling.py) and, when its time ran out with the channel still
due, leases and queues the next run at once, so the channel is never left unpolled between two
beat ticks. Short runs rather than an endless loop: a deploy or a worker restart never waits
long for a poll to end, and a changed setting is seen at the next run at the latest. The beat
entry ``poll-telegram`` (every 5 s) starts a run for every due channel with none running or
queued: a channel back from its backoff, a new one, one whose run or worker was lost (after
its lease runs out). On the worker's shutdown, waiting long polls are cancelled.

``bot_calls``: what the bot says back to an update in webhook mode (the consent question and
its answers), sent by the worker rather than inside the webhook's request.
"""

from __future__ import annotations

import logging
import warnings

import telegram
import telegram.warnings
from celery import shared_task
from celery.signals import worker_shutting_down
from django.conf import settings

from helpdesk.conversations.models import Channel
from helpdesk.conversations.secrets import SecretsUnreadable

from . import client, health, polling
from .outbound import scrub

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def poll_telegram_channels() -> int:
    """Beat, every few seconds: queue a run for each polling channel with none running or queued."""
    claimed = polling.claim_due_channels()
    for channel_id, holder in claimed:
        queue_poll(channel_id, holder)
    return len(claimed)


def queue_poll(channel_id: int, holder: str) -> None:
    poll_telegram.apply_async((channel_id, holder), queue=settings.TELEGRAM_POLL_QUEUE)


@shared_task(ignore_result=True, acks_late=False)
def poll_telegram(channel_id: int, holder: str | None = None) -> int | None:
    """One poll run (about TELEGRAM_POLL_RUN_SECONDS) under the channel's lease, then the next."""
    handled = polling.poll(channel_id, holder=holder)
    if handled is not None and not client.stopping.is_set():
        following = polling.claim(channel_id)  # None: stopped, backing off, or no longer polling
        if following:
            queue_poll(channel_id, following)
    return handled


@worker_shutting_down.connect
def _end_long_polls(**kwargs) -> None:
    client.interrupt()


async def _call_all(open_bot: telegram.Bot, token: str, calls: list[dict]) -> None:
    for call in calls:
        params = {key: value for key, value in call.items() if key != "method"}
        try:
            # The calls are Bot API requests by name on purpose (built where no Bot exists):
            # PTB's advice to use its own method instead is no news, and no line in the log.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Please use 'Bot.", telegram.warnings.PTBUserWarning)
                await open_bot.do_api_request(call["method"], api_kwargs=params)
        except telegram.error.InvalidToken:
            raise
        except telegram.error.TelegramError as exc:  # one refused call (an expired button press) spoils no other
            log.warning("telegram: %s failed: %s", call["method"], scrub(exc.message, token))


def run_calls(channel: Channel, calls: list[dict]) -> None:
    """Make the bot's Bot API calls (the consent question, its answers), in order; failures are logged."""
    try:
        token = channel.secret_values().get("bot_token", "")
    except SecretsUnreadable:
        log.error("telegram channel %s: its secrets can't be read; the bot's answer was not sent", channel.pk)
        return
    try:
        client.call(token, lambda open_bot: _call_all(open_bot, token, calls))
    except telegram.error.InvalidToken:
        health.token_refused(channel)
    except Exception as exc:  # the network: the customer may write again and is asked again
        log.warning("telegram channel %s: the bot's answer was not sent (%s)", channel.pk, type(exc).__name__)


@shared_task(ignore_result=True)
def bot_calls(channel_id: int, calls: list[dict]) -> None:
    """Webhook mode: what the bot says back to an update, sent by the worker, not the web request."""
    channel = Channel.objects.filter(pk=channel_id, archived_at__isnull=True, removed_at__isnull=True).first()
    if channel is not None:
        run_calls(channel, calls)
