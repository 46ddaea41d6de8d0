"""A python-telegram-bot ``Bot`` pointed at ``settings.TELEGRAM_API_URL`` (the real API, a
proxy or the tests' fake server)."""

from __future__ import annotations

import telegram
from django.conf import settings


def bot(token: str) -> telegram.Bot:
    base = settings.TELEGRAM_API_URL
    return telegram.Bot(token, base_url=f"{base}/bot", base_file_url=f"{base}/file/bot")


# The update types the channel asks for (getUpdates and setWebhook): messages, their edits, and
# presses of the consent question's buttons.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
