from django.apps import AppConfig


class TelegramConfig(AppConfig):
    name = "integrations.telegram"
    label = "telegram"

    def ready(self) -> None:
        from helpdesk.conversations.adapters import register

        from .adapter import ADAPTER

        register(ADAPTER)
