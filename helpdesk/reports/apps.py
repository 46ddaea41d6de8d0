from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "helpdesk.reports"
    label = "reports"

    def ready(self) -> None:
        # The event log tells the rollups of every event, in the event's own transaction.
        from helpdesk.events import log

        from . import rollups

        log.add_hook(rollups.on_event)
