"""Personal API tokens: create, revoke, and the employee a key belongs to."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from helpdesk.errors import ActionError
from helpdesk.events import audit

from ..models import ApiToken, Employee
from ._common import _clean_name
from .employees import _manageable

TOKEN_PREFIX = "sc"


def _hash_secret(secret: str) -> str:
    # The secret is 32 random bytes: a plain SHA-256 is enough (no dictionary to guess from).
    return hashlib.sha256(secret.encode()).hexdigest()


@transaction.atomic(durable=True)
def create_api_token(*, by: Employee, name: str) -> tuple[ApiToken, str]:
    """A new personal API key. The full key is returned once and never stored."""
    if not by.is_active:
        raise ActionError(_("That employee is deactivated."), code="inactive")
    name = _clean_name(name)
    if ApiToken.objects.filter(employee=by, revoked_at__isnull=True).count() >= 20:
        raise ActionError(_("You have 20 active API tokens; revoke one first."), code="too_many")
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    token = ApiToken.objects.create(employee=by, name=name, prefix=prefix, secret_hash=_hash_secret(secret))
    audit.record("api_token.created", company=by.company_id, actor=by, obj=token, after={"name": name})
    return token, f"{TOKEN_PREFIX}_{prefix}_{secret}"


@transaction.atomic(durable=True)
def revoke_api_token(token: ApiToken, *, by: Employee) -> ApiToken:
    token = ApiToken.objects.select_for_update().select_related("employee").get(pk=token.pk)
    if token.employee_id != by.pk:
        # Someone else's token: only who manages its owner may revoke it.
        _manageable(by, token.employee)
    if token.revoked_at:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record("api_token.revoked", company=by.company_id, actor=by, obj=token, before={"name": token.name})
    return token


def employee_for_api_key(key: str) -> tuple[Employee, ApiToken] | None:
    """The active employee a key belongs to, or None. Constant-time on the secret."""
    parts = (key or "").split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    token = (
        ApiToken.objects.select_related("employee__role", "employee__user", "employee__company")
        .filter(prefix=parts[1], revoked_at__isnull=True)
        .first()
    )
    if token is None or not hmac.compare_digest(token.secret_hash, _hash_secret(parts[2])):
        return None
    if not token.employee.is_active or not token.employee.user.is_active:
        return None
    now = timezone.now()
    # Remember use, but write at most once a minute per token.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token.employee, token
