from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "helpdesk.reports"
    label = "reports"

    def ready(self) -> None:
        # The rollups are kept from the event log after it commits (applier.py, on the worker's
        # schedule and before every read of the figures): nothing on the write path.
        # A company's new time zone moves every local hour: recount (rollups.on_timezone_change).
        from helpdesk.accounts.actions import company

        from . import rollups

        company.add_timezone_hook(rollups.on_timezone_change)
