"""The Reports page's socket: it says "changed" when the live queue may have moved.

It joins the groups the inbox socket of the same employee joins (from access, never from the
client), so it hears exactly the conversation and presence events the reader's inbox would,
and sends no figure itself: the page fetches the live block over HTTP, where queries.live
applies the reader's scope. Unlike an inbox tab it is no heartbeat: a manager watching the
numbers does not count as an agent at work. Frames go out at most once per
REPORTS_LIVE_THROTTLE_SECONDS, the last change of a burst always told.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access
from helpdesk.conversations.access import Viewer

from . import notices
from .catchup import audience_sees
from .consumers import ACCESS_CHANGED, FORBIDDEN, UNAUTHENTICATED
from .fanout import presence_group
from .sockets import LiveJsonConsumer, socket_db


@socket_db
def _reader(user) -> tuple[Viewer | None, bool]:
    """The employee's viewer, and whether they may read reports."""
    if not user.is_authenticated:
        return None, False
    employee = Employee.objects.select_related("role", "company").filter(user=user, is_active=True).first()
    if employee is None or not access.may_use_session(employee):
        return None, False
    return Viewer.of(employee), employee.can(Perm.VIEW_REPORTS)


class ReportsConsumer(LiveJsonConsumer):
    socket_kind = "reports"

    async def connect(self) -> None:
        self.joined: list[str] = []
        self.viewer, allowed = await _reader(self.scope["user"])
        if self.viewer is None:
            await self.close(code=UNAUTHENTICATED)
            return
        if not allowed:
            await self.close(code=FORBIDDEN)
            return
        self.throttle = getattr(settings, "REPORTS_LIVE_THROTTLE_SECONDS", 2.0)
        self.last_sent = 0.0
        self.pending: asyncio.TimerHandle | None = None
        self.joined = [
            *self.viewer.groups(),
            presence_group(self.viewer.company_id),
            notices.personal_group(self.viewer.employee_id),
        ]
        await self.join_layer(self.joined)  # presence, notices
        await self.join_relay([*self.viewer.groups(), notices.personal_group(self.viewer.employee_id)])
        await self.accept()
        await self.send_json({"type": "hello"})

    async def disconnect(self, code: int) -> None:
        if getattr(self, "pending", None):
            self.pending.cancel()
        await self.leave_relay()
        await self.leave_layer()

    async def receive_json(self, content: Any, **kwargs) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.join_layer()  # again if Redis lost the groups
            await self.send_json({"type": "pong"})
        else:
            await self._error("unknown_type", _("Unknown message type."))

    async def _changed(self) -> None:
        now = time.monotonic()
        wait = self.last_sent + self.throttle - now
        if wait <= 0:
            self.last_sent = now
            await self.send_json({"type": "changed"})
        elif self.pending is None:
            loop = asyncio.get_running_loop()
            self.pending = loop.call_later(wait, lambda: asyncio.ensure_future(self._flush()))

    async def _flush(self) -> None:
        self.pending = None
        self.last_sent = time.monotonic()
        await self.send_json({"type": "changed"})

    # --- What the inbox groups carry -----------------------------------------------------------

    async def inbox_event(self, message: dict[str, Any]) -> None:
        if audience_sees(self.viewer, message["event"]):
            await self._changed()

    async def inbox_presence(self, message: dict[str, Any]) -> None:
        await self._changed()

    async def inbox_access_changed(self, message: dict[str, Any]) -> None:
        if not getattr(self, "closing", False):  # heard twice: from the relay and the layer
            self.closing = True
            await self.close(code=ACCESS_CHANGED)

    async def inbox_typing(self, message: dict[str, Any]) -> None:
        return None

    async def inbox_notice(self, message: dict[str, Any]) -> None:
        return None
