"""django-axes with two limits: per account and address, and per account across all addresses.

Axes compares one count with one limit (``AXES_FAILURE_LIMIT``), the largest over the groups
of ``AXES_LOCKOUT_PARAMETERS``. Here the pair (e-mail, address) keeps LOGIN_FAILURE_LIMIT and
the e-mail alone gets the higher LOGIN_ACCOUNT_FAILURE_LIMIT.
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.http import HttpRequest


def _failures(attempts: QuerySet) -> int:
    return attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0


class LockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # One queryset per group of AXES_LOCKOUT_PARAMETERS, in its order: pair, then account.
        pair, account = self.get_user_attempts(request, credentials)
        failures = _failures(pair)
        if get_client_username(request, credentials) and _failures(account) >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT:
            # Marks the request for the audit log's reason; counts as the pair limit for axes.
            request.account_locked_out = True
            return max(failures, settings.AXES_FAILURE_LIMIT)
        return failures

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # A right password clears the failures of its own address only: the owner signing in
        # must not hand a guesser spread over other addresses a fresh allowance.
        pair, _account = self.filter_user_attempts(request, credentials)
        count, _ = pair.delete()
        return count


def account_locked_out(request: HttpRequest) -> bool:
    """Whether this request was refused because its account, not its address, is locked."""
    return getattr(request, "account_locked_out", False)
