"""The Celery side: beat starts a short poll for every due polling channel; the bot's answers in webhook mode."""

from __future__ import annotations

import logging

import telegram
from asgiref.sync import async_to_sync
from celery import shared_task
from django.conf import settings

from helpdesk.conversations.models import Channel
from helpdesk.conversations.secrets import SecretsUnreadable

from . import health, polling
from .client import bot
from .outbound import scrub

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def poll_telegram_channels() -> int:
    """Beat, every few seconds: queue one poll for each polling channel with none running or queued."""
    claimed = polling.claim_due_channels()
    for channel_id, holder in claimed:
        poll_telegram.apply_async((channel_id, holder), queue=settings.TELEGRAM_POLL_QUEUE)
    return len(claimed)


@shared_task(ignore_result=True, acks_late=False)
def poll_telegram(channel_id: int, holder: str | None = None) -> int | None:
    """One getUpdates long poll (at most TELEGRAM_POLL_TIMEOUT seconds) under the channel's lease."""
    return polling.poll(channel_id, holder=holder)


async def _call_all(token: str, calls: list[dict]) -> None:
    client = bot(token)
    try:
        for call in calls:
            params = {key: value for key, value in call.items() if key != "method"}
            try:
                await client.do_api_request(call["method"], api_kwargs=params)
            except telegram.error.InvalidToken:
                raise
            except telegram.error.TelegramError as exc:  # one refused call (an expired button press) spoils no other
                log.warning("telegram: %s failed: %s", call["method"], scrub(exc.message, token))
    finally:
        await client.shutdown()


def run_calls(channel: Channel, calls: list[dict]) -> None:
    """Make the bot's Bot API calls (the consent question, its answers), in order; failures are logged."""
    try:
        token = channel.secret_values().get("bot_token", "")
    except SecretsUnreadable:
        log.error("telegram channel %s: its secrets can't be read; the bot's answer was not sent", channel.pk)
        return
    try:
        async_to_sync(_call_all)(token, calls)
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
