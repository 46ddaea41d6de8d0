"""A Telegram bot's settings: the token BotFather gave, and how updates arrive.

The token is checked with ``getMe`` before anything is saved; the bot's username comes back
and is kept (for its t.me link).
"""

from __future__ import annotations

from typing import Any

import telegram
from asgiref.sync import async_to_sync
from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk.conversations.adapters import ChannelSetup, SetupError
from helpdesk.conversations.models import Channel

from .client import bot

MODES = [
    ("polling", gettext_lazy("Polling: the worker asks Telegram for new messages")),
    ("webhook", gettext_lazy("Webhook: Telegram sends new messages to this server")),
]
WEBHOOK_PATH = "/hooks/telegram/{public_key}/"


class TelegramSettingsForm(forms.Form):
    bot_token = forms.RegexField(
        label=gettext_lazy("Bot token"),
        help_text=gettext_lazy("The token @BotFather gave when the bot was made, like 123456789:AAE…"),
        regex=r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$",
        max_length=130,
        error_messages={"invalid": gettext_lazy("This is not a bot token: it looks like 123456789:AAE…")},
    )
    mode = forms.ChoiceField(label=gettext_lazy("How messages arrive"), choices=MODES, initial="polling")


async def _get_me(token: str) -> telegram.User:
    async with bot(token) as client:  # initialize() asks getMe once and keeps the answer
        return client.bot


class TelegramSetup(ChannelSetup):
    form = TelegramSettingsForm

    def check_credentials(self, values: dict[str, Any]) -> dict[str, Any]:
        try:
            me = async_to_sync(_get_me)(values["bot_token"])
        except telegram.error.InvalidToken:
            raise SetupError(_("Telegram did not accept this bot token."), field="bot_token") from None
        except telegram.error.NetworkError:  # includes TimedOut
            raise SetupError(_("Telegram could not be reached. Try again in a minute.")) from None
        except telegram.error.TelegramError as exc:
            raise SetupError(_("Telegram refused the bot: %(reason)s") % {"reason": exc.message[:200]}) from None
        return {"bot_username": me.username or "", "bot_id": me.id}

    def provider_url(self, channel: Channel, *, base_url: str) -> str | None:
        if channel.settings.get("mode") != "webhook":
            return None
        return base_url + WEBHOOK_PATH.format(public_key=channel.public_key)
