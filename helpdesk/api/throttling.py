"""The API's rate limit: per personal API token, or per signed-in user for the browser's session."""

from __future__ import annotations

from rest_framework.throttling import BaseThrottle

from helpdesk import ratelimits
from helpdesk.accounts.models import ApiToken


class ApiRateThrottle(BaseThrottle):
    """``RATE_LIMIT_API_PER_TOKEN`` for a key, ``RATE_LIMIT_API_PER_USER`` for a session.

    DRF checks throttles after authentication and permissions, so an anonymous request is
    refused (401/403) before it gets here; it is not counted.
    """

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def allow_request(self, request, view) -> bool:
        if isinstance(request.auth, ApiToken):
            check = (ratelimits.API_PER_TOKEN, f"token:{request.auth.pk}")
        elif request.user and request.user.is_authenticated:
            check = (ratelimits.API_PER_USER, f"user:{request.user.pk}")
        else:
            return True
        try:
            ratelimits.hit(check)
        except ratelimits.RateLimited as exc:
            self.retry_after = exc.retry_after
            return False
        return True

    def wait(self) -> int | None:
        return self.retry_after
