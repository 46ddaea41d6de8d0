"""A Telegram bot's settings: the token BotFather gave, and how updates arrive.

The token is checked with ``getMe`` before anything is saved; the bot's username comes back
and is kept (for its t.me link).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from typing import Any

import telegram
from asgiref.sync import async_to_sync
from django import forms
from django.conf import settings
from django.utils.translation import gettext, gettext_lazy
from django.utils.translation import gettext as _

from helpdesk.conversations.adapters import ChannelLink, ChannelSetup, SetupError
from helpdesk.conversations.models import Channel

from .client import ALLOWED_UPDATES, bot
from .consent import DEFAULT_TEXT as DEFAULT_CONSENT_TEXT
from .consent import TEXT_LIMIT as CONSENT_TEXT_LIMIT

MODES = [
    ("polling", gettext_lazy("Polling: the worker asks Telegram for new messages")),
    ("webhook", gettext_lazy("Webhook: Telegram sends new messages to this server")),
]
WEBHOOK_PATH = "/hooks/telegram/{public_key}/"
# A deep link's payload: Telegram allows 1-64 of A-Z a-z 0-9 _ - (core.telegram.org/bots/features#deep-linking);
# inbound.py records it on the new contact as ``source``.
START_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_SOURCE = "site"

log = logging.getLogger(__name__)


def webhook_secret(channel: Channel) -> str:
    """The ``secret_token`` Telegram sends back with each webhook call for this channel.

    Derived, not stored: an HMAC of the channel's key and bot token under SECRET_KEY, so a new
    token (or a new SECRET_KEY, after saving the channel again) gives a new secret.
    """
    token = channel.secret_values().get("bot_token", "")
    message = f"telegram-webhook:{channel.public_key}:{token}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


async def _set_webhook(token: str, url: str | None, secret: str) -> None:
    client = bot(token)
    try:
        if url:
            await client.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
        else:
            await client.delete_webhook()
    finally:
        await client.shutdown()


class TelegramSettingsForm(forms.Form):
    bot_token = forms.RegexField(
        label=gettext_lazy("Bot token"),
        help_text=gettext_lazy("The token @BotFather gave when the bot was made, like 123456789:AAE…"),
        regex=r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$",
        max_length=130,
        error_messages={"invalid": gettext_lazy("This is not a bot token: it looks like 123456789:AAE…")},
    )
    mode = forms.ChoiceField(label=gettext_lazy("How messages arrive"), choices=MODES, initial="polling")
    consent_required = forms.BooleanField(
        label=gettext_lazy("Ask for consent to personal-data processing"),
        help_text=gettext_lazy(
            "Before a conversation opens, the bot sends the consent text with Accept and Decline buttons; "
            "until the customer accepts, their messages are kept but no agent sees them."
        ),
        required=False,
    )
    consent_text = forms.CharField(
        label=gettext_lazy("Consent text"),
        help_text=gettext_lazy(
            "Leave empty for the default text, in Russian or English by the customer's language. "
            "Each change of the text is a new version; the version a customer accepted is kept on the contact."
        ),
        required=False,
        max_length=CONSENT_TEXT_LIMIT,
        widget=forms.Textarea(attrs={"rows": 5}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consent_text"].widget.attrs["placeholder"] = gettext(DEFAULT_CONSENT_TEXT)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        text = (data.get("consent_text") or "").strip()
        data["consent_text"] = text
        # The text's version: 1 at first, one more each time the text changes (kept in the settings).
        before = self.initial or {}
        previous = before.get("consent_version")
        previous = previous if isinstance(previous, int) and previous > 0 else 0
        if not previous:
            data["consent_version"] = 1
        elif text != (before.get("consent_text") or "").strip():
            data["consent_version"] = previous + 1
        else:
            data["consent_version"] = previous
        return data


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

    def after_save(self, channel: Channel) -> None:
        """Webhook mode on an enabled channel: setWebhook; polling or disabled: deleteWebhook.

        Needs PUBLIC_URL for the webhook's address. Failures are logged (the channel is saved;
        saving it again tries again).
        """
        from .outbound import scrub
        from .polling import restart

        restart(channel)
        token = channel.secret_values().get("bot_token", "")
        if not token:
            return
        url = None
        if channel.enabled and channel.settings.get("mode") == "webhook":
            if not settings.PUBLIC_URL:
                log.warning("telegram channel %s: PUBLIC_URL is not set, so no webhook can be set", channel.pk)
                return
            url = settings.PUBLIC_URL + WEBHOOK_PATH.format(public_key=channel.public_key)
        try:
            async_to_sync(_set_webhook)(token, url, webhook_secret(channel))
        except telegram.error.TelegramError as exc:
            log.warning(
                "telegram channel %s: %s failed: %s",
                channel.pk,
                "setWebhook" if url else "deleteWebhook",
                scrub(exc.message, token),
            )

    def provider_url(self, channel: Channel, *, base_url: str) -> str | None:
        if channel.settings.get("mode") != "webhook":
            return None
        return base_url + WEBHOOK_PATH.format(public_key=channel.public_key)

    def links(self, channel: Channel) -> list[ChannelLink]:
        link = self.link(channel, DEFAULT_SOURCE)
        return [link] if link else []

    def link(self, channel: Channel, source: str) -> ChannelLink | None:
        username = channel.settings.get("bot_username", "")
        if not username:  # getMe gave none (or the channel predates keeping it): no t.me link
            return None
        if not START_PAYLOAD.fullmatch(source):
            raise SetupError(
                _("A link's source is 1 to 64 characters: Latin letters, digits, _ and - (no spaces)."),
                field="start",
            )
        return ChannelLink(source=source, url=f"https://t.me/{username}?start={source}")
