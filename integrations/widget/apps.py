from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WidgetConfig(AppConfig):
    name = "integrations.widget"
    label = "widget"

    def ready(self) -> None:
        from helpdesk.conversations.adapters import Adapter, register

        from .setup import WidgetSetup

        register(Adapter(kind="widget", label=_("Website widget"), setup=WidgetSetup()))
