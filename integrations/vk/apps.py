from django.apps import AppConfig


class VkConfig(AppConfig):
    name = "integrations.vk"
    label = "vk"

    def ready(self) -> None:
        from helpdesk.conversations.adapters import Adapter, register

        from .setup import VkSetup

        # Set-up only for now: inbound (Long Poll, Callback API) and delivery arrive in later parts.
        register(Adapter(kind="vk", label="VK", secret_fields=("access_token", "secret"), setup=VkSetup()))
