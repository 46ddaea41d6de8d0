"""The rules every administrative action shares: the company lock, same-company checks, the
last super-admin, telling inboxes their access changed, names."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from helpdesk.errors import ActionError

from ..models import Company, Employee, Role
from ..permissions import Perm

_UNSET: Any = object()
log = logging.getLogger(__name__)


def _lock_company(company_id: int) -> Company:
    """Serialise administrative changes within one company (cheap: admins are few)."""
    return Company.objects.select_for_update().get(pk=company_id)


def _same_company(by: Employee, *objects: Any) -> None:
    for obj in objects:
        if obj is not None and obj.company_id != by.company_id:
            raise ActionError(_("That belongs to another company."), code="foreign")


def _ensure_roles_can_still_be_managed(company_id: int) -> None:
    """Refuse any change that would leave the company without an active super-admin."""
    managing = [
        role.pk
        for role in Role.objects.filter(company_id=company_id, archived_at__isnull=True)
        if Perm.MANAGE_ROLES in role.permissions
    ]
    if not Employee.objects.filter(company_id=company_id, is_active=True, role_id__in=managing).exists():
        raise ActionError(
            _("The company must keep at least one active employee who can manage roles (a super-admin)."),
            code="last_super_admin",
        )


def _access_changed(employee_ids: Any) -> None:
    """After commit, their open inbox sockets stop: they were opened with the old access.

    Registered before anything else the action queues for after commit (a hand-out's
    events), so the sockets hear of it before any event they may no longer see.
    """
    ids = sorted(set(employee_ids))
    if ids:
        transaction.on_commit(partial(_tell_inboxes, ids))


def _tell_inboxes(employee_ids: list[int]) -> None:
    from helpdesk.realtime import notices

    try:
        notices.access_changed(employee_ids)
    except Exception:  # Redis away for a moment: each socket re-checks its access on resume
        log.exception("could not tell inboxes of employees %s that their access changed", employee_ids)


def _clean_name(name: str, *, field: str = "name", limit: int = 100) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ActionError(_("The name can't be empty."), code="empty_name", field=field)
    if len(name) > limit:
        raise ActionError(
            _("The name can be at most %(limit)s characters long.") % {"limit": limit}, code="too_long", field=field
        )
    return name
