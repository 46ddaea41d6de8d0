"""The audit log: one row per administrative change, sign-in, deletion or restoration.

Actions call :func:`record` inside their transaction, so the row exists exactly when the
change does. The request's IP address comes from :class:`AuditContextMiddleware`.
"""

from __future__ import annotations

import contextvars
import ipaddress
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
    """The address of an HTTP request's client: what the audit log, lock-out and limits key on.

    It is the connection's peer, or, from a proxy in TRUSTED_PROXIES, the address that proxy
    reports: smartchat.asgi has already applied that rule, so nothing here reads a header.
    """
    return _ip(request.META.get("REMOTE_ADDR"))


def socket_client_ip(scope: dict[str, Any]) -> str | None:
    """The same for a websocket: its ASGI scope's client, after the same TRUSTED_PROXIES rule."""
    client = scope.get("client")
    return _ip(client[0] if client else None)


def _ip(value: str | None) -> str | None:
    # Only an IP address (a proxy might report "unknown"): the audit column holds addresses.
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


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
