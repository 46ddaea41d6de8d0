"""The Celery app: outbound delivery, scheduled wake-ups; the broker comes from settings."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartchat.settings")

app = Celery("smartchat")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
