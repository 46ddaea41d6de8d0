from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "helpdesk.reports"
    label = "reports"

    def ready(self) -> None:
        # The event log tells the rollups of every event, in the event's own transaction.
        from helpdesk.events import log

        from . import rollups

        log.add_hook(rollups.on_event)
        # A company's new time zone moves every local hour: recount (rollups.on_timezone_change).
        from helpdesk.accounts.actions import company

        company.add_timezone_hook(rollups.on_timezone_change)
