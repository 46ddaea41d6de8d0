from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "helpdesk.web"
    label = "web"
