from django.apps import AppConfig


class TelegramConfig(AppConfig):
    name = "integrations.telegram"
    label = "telegram"

    def ready(self) -> None:
        from helpdesk.conversations.adapters import Adapter, register

        from .setup import TelegramSetup

        # Set-up only for now: inbound (polling, webhook) and delivery arrive in later parts.
        register(Adapter(kind="telegram", label="Telegram", secret_fields=("bot_token",), setup=TelegramSetup()))
