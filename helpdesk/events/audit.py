"""The audit log: one row per administrative change, sign-in, deletion or restoration.

Actions call :func:`record` inside their transaction, so the row exists exactly when the
change does. The request's IP address comes from :class:`AuditContextMiddleware`.
"""

from __future__ import annotations

import contextvars
from typing import Any

from helpdesk.accounts.models import Company, Employee

from .models import AuditEntry

_client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("audit_client_ip", default=None)


def record(
    action: str,
    *,
    company: Company | int | None,
    actor: Employee | None,
    obj: Any = None,
    object_type: str = "",
    object_repr: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    actor_name: str = "",
) -> AuditEntry:
    """Append one audit row; with both ``before`` and ``after`` only the changed keys are kept."""
    before, after = changed(before or {}, after or {})
    company_id = company.pk if isinstance(company, Company) else company
    return AuditEntry.objects.create(
        company_id=company_id,
        actor=actor,
        actor_name=actor_name or (actor.display_name if actor else ""),
        action=action,
        object_type=object_type or (obj._meta.model_name if obj is not None else ""),
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:200],
        before=before,
        after=after,
        ip=_client_ip.get(),
    )


def changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only what differs, when there is a before and an after; otherwise both as given."""
    if not before or not after:
        return before, after
    keys = [key for key in {**before, **after} if before.get(key) != after.get(key)]
    return {k: before.get(k) for k in keys if k in before}, {k: after.get(k) for k in keys if k in after}


def client_ip(request) -> str | None:
    # Behind the proxy of docker-compose.yml uvicorn already puts the client's address here
    # (--proxy-headers); we never trust X-Forwarded-For ourselves.
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware:
    """Remember the request's client address for the audit rows written while serving it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _client_ip.set(client_ip(request))
        try:
            return self.get_response(request)
        finally:
            _client_ip.reset(token)
