"""Ephemeral socket messages: typing indicators, and one employee's tabs kept in step.

Unlike events these are not stored and not caught up after a reconnect: a typing notice or
"read in another tab" is worth nothing a minute later. Who receives them is still decided
by the gate: typing reaches only the inbox sockets whose viewer may see the conversation.
"""

from __future__ import annotations

import secrets
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.http import Http404

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.conversations.models import Conversation

TYPING_MODES = ("reply", "note")

Send = tuple[str, dict[str, Any]]


def personal_group(employee_id: int) -> str:
    """Every inbox socket of one employee, whatever their scope (their other tabs)."""
    return f"inbox-{employee_id}"


def _access_snapshot(conversation: Conversation) -> dict[str, Any]:
    # Just what Viewer.sees needs: typing must not carry the conversation's contents.
    return {
        "company_id": conversation.company_id,
        "team_id": conversation.team_id,
        "assignee_id": conversation.assignee_id,
        "deleted": conversation.deleted_at is not None,
    }


def _to_inboxes(conversation: Conversation, notice: dict[str, Any]) -> list[Send]:
    snapshot = _access_snapshot(conversation)
    # A socket in two of the groups (its team's and its own, as the assignee) gets the message
    # twice: the id lets it pass the notice on once.
    message = {"type": "inbox.typing", "snapshot": snapshot, "notice": notice, "id": secrets.token_hex(8)}
    return [(group, message) for group in sorted(access.snapshot_groups(snapshot))]


def visitor_typing(*, channel_id: int, visitor_id: str, typing: bool) -> list[Send]:
    """A widget visitor is typing (or stopped): to the inboxes that may see their open conversation."""
    conversation = (
        Conversation.objects.filter(
            channel_id=channel_id,
            contact__identities__channel_id=channel_id,
            contact__identities__external_id=visitor_id,
            deleted_at__isnull=True,
        )
        .order_by("-pk")
        .first()
    )
    if conversation is None:  # nothing written yet: nobody to tell
        return []
    notice = {"type": "typing", "conversation_id": conversation.pk, "from": "visitor", "typing": typing}
    return _to_inboxes(conversation, notice)


def agent_typing(*, employee_id: int, conversation_id: Any, mode: str, typing: bool) -> list[Send]:
    """An agent is typing a reply or a note: to colleagues who see the chat; a reply also to the customer.

    The conversation is looked up through the gate, so a socket can't announce typing in
    (or learn anything about) a conversation its employee may not see.
    """
    employee = Employee.objects.select_related("role").filter(pk=employee_id, is_active=True).first()
    if employee is None or mode not in TYPING_MODES:
        return []
    try:
        conversation = access.get_conversation(employee, conversation_id)
    except Http404:
        return []
    notice = {
        "type": "typing",
        "conversation_id": conversation.pk,
        "from": "agent",
        "employee_id": employee.pk,
        "name": employee.display_name,
        "mode": mode,
        "typing": typing,
    }
    sends = _to_inboxes(conversation, notice)
    # Only a reply is news for the customer; a note being written never shows on their side.
    if mode == "reply" and employee.can(Perm.REPLY):
        from integrations import outbound

        sends += outbound.typing_sends(conversation, name=employee.display_name, typing=typing)
    return sends


def conversation_read(*, employee_id: int, conversation_id: int, last_read_message_id: int) -> None:
    """Tell the employee's other tabs that they read this conversation (their badges clear)."""
    notice = {"type": "read", "conversation_id": conversation_id, "last_read_message_id": last_read_message_id}
    send_all([(personal_group(employee_id), {"type": "inbox.notice", "notice": notice})])


def access_changed(employee_ids: list[int]) -> None:
    """Their role, teams or active state changed: their open inbox sockets stop and the pages reload.

    A socket joined its groups, and filters events, by the access its employee had when it
    opened; left open it would go on hearing about conversations they may no longer see.

    This process's own sockets get it through their relay's queue, ahead of the events of
    the same transaction (this runs on commit before their ``publish`` wakes the relay), so
    none of those events reaches a socket still holding the old access. Sockets of other
    processes get it through the channel layer.
    """
    from . import relay

    sends = [(personal_group(pk), {"type": "inbox.access_changed"}) for pk in sorted(set(employee_ids))]
    relay.deliver_here(sends)
    send_all(sends)


def send_all(sends: list[Send]) -> None:
    if sends:
        async_to_sync(send_all_async)(sends)


async def send_all_async(sends: list[Send]) -> None:
    layer = get_channel_layer()
    for group, message in sends:
        await layer.group_send(group, message)
