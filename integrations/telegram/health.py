"""Telegram refused the bot token (revoked in @BotFather, or the bot deleted): the channel is broken."""

from __future__ import annotations

import logging

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_noop

from helpdesk.accounts import actions as account_actions
from helpdesk.conversations.models import Channel

log = logging.getLogger(__name__)
TOKEN_REFUSED = gettext_noop("Telegram did not accept the bot token.")


def token_refused(channel: Channel, poll_state: QuerySet | None = None) -> None:
    """Stop polling (``poll_state``: the poller's own ``PollState`` row) and mark the channel broken.

    Marking is once (the writer's compare-and-swap), however often the token is refused; the
    admins are told then. Saving the channel with a working token clears both.
    """
    log.warning("telegram channel %s: the bot token was refused", channel.pk)
    if poll_state is not None:
        poll_state.filter(stopped_at__isnull=True).update(stopped_at=timezone.now(), last_error=TOKEN_REFUSED)
    account_actions.mark_channel_broken(channel, reason=TOKEN_REFUSED)
