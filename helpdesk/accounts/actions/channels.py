"""Channels: rename one, route it to a team, change its kind's settings."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from helpdesk.conversations import access
from helpdesk.conversations.models import Channel
from helpdesk.events import audit

from ..models import Employee, Team
from ..permissions import Perm
from ._common import _UNSET, _clean_name, _lock_company, _same_company


def channel_state(channel: Channel) -> dict[str, Any]:
    return {"name": channel.name, "team": channel.team.name if channel.team_id else None, **channel.settings}


@transaction.atomic(durable=True)
def update_channel(
    channel: Channel, *, by: Employee, name: str = _UNSET, team: Team | None = _UNSET, settings: dict = _UNSET
) -> Channel:
    """Rename a channel, route it to a team, or change its kind's settings (already validated)."""
    access.require(by, Perm.MANAGE_CHANNELS)
    _same_company(by, channel)
    _lock_company(by.company_id)
    channel = Channel.objects.select_for_update(of=("self",)).select_related("team").get(pk=channel.pk)
    before = channel_state(channel)
    if name is not _UNSET:
        channel.name = _clean_name(name)
    if team is not _UNSET:
        _same_company(by, team)
        channel.team = team
    if settings is not _UNSET:
        channel.settings = {**channel.settings, **settings}
    channel.save(update_fields=["name", "team", "settings"])
    audit.record(
        "channel.updated", company=by.company_id, actor=by, obj=channel, before=before, after=channel_state(channel)
    )
    return channel
