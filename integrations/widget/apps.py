from django.apps import AppConfig


class WidgetConfig(AppConfig):
    name = "integrations.widget"
    label = "widget"
