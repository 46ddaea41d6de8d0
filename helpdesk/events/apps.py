from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "helpdesk.events"
    label = "events"
