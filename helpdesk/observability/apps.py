from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "helpdesk.observability"
    label = "observability"

    def ready(self) -> None:
        from helpdesk.conversations.models import ChannelKind

        from . import metrics, signals  # noqa: F401  (signals: Celery's receivers)

        # Every series a dashboard shows exists from the start, at 0, not from its first event.
        metrics.declare(socket_kinds=("inbox", "widget", "reports"), channel_kinds=ChannelKind.values)
