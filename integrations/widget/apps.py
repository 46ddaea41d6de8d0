from django.apps import AppConfig


class WidgetConfig(AppConfig):
    name = "integrations.widget"
    label = "widget"

    def ready(self) -> None:
        from helpdesk.conversations.adapters import register

        from .adapter import ADAPTER

        register(ADAPTER)
