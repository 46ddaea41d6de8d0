"""Background work of the statistics: keeping the rollups from the event log, and the recount
after a company changes its time zone."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from . import applier, rollups

log = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=5, acks_late=True)
def recount_company(self, company_id: int) -> int:
    """Rebuild one company's rollups from its event log (rollups.recount), logging progress.

    Queued after commit by rollups.on_timezone_change, rollups.ZONE_SETTLE seconds later: by
    then every process's cached zone is the new one. It runs inside the applier (live writes
    never touch the rollups); a database error retries it.
    """
    try:
        return rollups.recount(company_id, progress=lambda line: log.info("statistics recount: %s", line))
    except DatabaseError as exc:
        log.warning("statistics recount of company %s failed (%s); retrying", company_id, exc)
        raise self.retry(exc=exc, countdown=30) from None


@shared_task(ignore_result=True)
def apply_statistics() -> int | None:
    """Apply the events committed since the last batch to the rollups (applier.apply_pending),
    on beat's schedule. Another applier running (a reader catching up, a recount) means this
    one has nothing to do: it does not wait."""
    return applier.apply_pending(wait=0)
