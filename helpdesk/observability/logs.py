"""Log records carry the request id (django-guid's, from X-Request-ID or made up) and, in JSON, one line each."""

from __future__ import annotations

import logging

from pythonjsonlogger.core import RESERVED_ATTRS


class RequestIdFilter(logging.Filter):
    """Puts ``request_id`` on every record: the HTTP request's, or the Celery task's it came from.

    ``missing``: what records outside any request or task get (None is JSON's null).
    """

    def __init__(self, missing: str | None = None) -> None:
        super().__init__()
        self.missing = missing

    def filter(self, record: logging.LogRecord) -> bool:
        from django_guid import get_guid  # here: settings import this module before apps are ready

        record.request_id = get_guid() or self.missing
        return True


def logging_config(*, log_format: str, level: str) -> dict:
    """Django's LOGGING: text lines for people in development, JSON lines for collectors in production."""
    json = log_format == "json"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": "helpdesk.observability.logs.RequestIdFilter", "missing": None if json else "-"}
        },
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)d",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
                # Celery puts a task's arguments and result in "data", Django the request object
                # (its repr holds the query string) in "request": neither goes to the collector.
                "reserved_attrs": [*RESERVED_ATTRS, "data", "request"],
            },
            "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["request_id"],
                "formatter": "json" if json else "text",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.channels.server": {"level": "WARNING"},
            # Lock-outs are warnings; every attempt is in the audit log already.
            "axes": {"level": "WARNING"},
            # httpx logs every request's URL at INFO, and a Telegram URL carries the bot token.
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "telegram": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
            "vk_api": {"level": "WARNING"},
            # django-guid says at INFO, for every request and task, where the id came from.
            "django_guid": {"level": "WARNING"},
        },
    }
