from django.apps import AppConfig


class VkConfig(AppConfig):
    name = "integrations.vk"
    label = "vk"

    def ready(self) -> None:
        from helpdesk.conversations.adapters import register

        from .adapter import ADAPTER

        register(ADAPTER)
