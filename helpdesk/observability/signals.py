"""Celery's signals, in every process that sends or runs tasks: failures counted, task ids logged.

django-guid's Celery integration (settings.DJANGO_GUID) puts the request id in each task's
headers when it is queued and makes it current while the worker runs it; these receivers run
after its own, so their lines carry it.
"""

from __future__ import annotations

import logging

from celery.signals import setup_logging, task_failure, task_prerun, task_retry

from . import metrics

log = logging.getLogger("smartchat.tasks")


@task_prerun.connect(weak=False)
def _task_started(sender=None, task_id=None, **kwargs) -> None:
    log.info("task %s %s started", getattr(sender, "name", "?"), task_id)


@task_failure.connect(weak=False)
def _task_failed(sender=None, task_id=None, exception=None, **kwargs) -> None:
    metrics.task_failed(getattr(sender, "name", ""))


@task_retry.connect(weak=False)
def _task_retried(sender=None, **kwargs) -> None:
    metrics.task_retried(getattr(sender, "name", ""))


@setup_logging.connect(weak=False)
def _keep_djangos_logging(**kwargs) -> None:
    """The worker keeps Django's LOGGING (JSON lines with the request id) instead of Celery's own format.

    django.setup() has configured it already when the worker starts; a receiver here is what
    tells Celery not to replace the root logger's handlers.
    """
