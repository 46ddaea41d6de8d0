"""The agent inbox socket: one per open tab, joined to the groups its employee may see."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from helpdesk.accounts import actions as account_actions
from helpdesk.accounts import presence
from helpdesk.accounts.models import Employee
from helpdesk.conversations import access
from helpdesk.conversations.access import Viewer

from . import notices
from .catchup import FutureResume, audience_sees, catch_up
from .fanout import presence_group
from .sockets import LiveJsonConsumer, TypingThrottle, is_id, socket_db

log = logging.getLogger(__name__)

# Close codes: the 4000 range is ours; the browser shows the reason in the console.
UNAUTHENTICATED = 4401
FORBIDDEN = 4403
# The employee's role, teams or active state changed: the page reloads with its new access.
ACCESS_CHANGED = 4409
# Ids a socket remembers to send an event, or a typing notice, once though two of its groups
# got it. Made at the first one: an empty deque already holds a 64-slot block (~0.8 KiB), and
# most sockets sit idle (issue 11: an idle inbox socket's memory).
RECENT_EVENTS = 1000
RECENT_NOTICES = 200


@socket_db
def _viewer_for(user) -> Viewer | None:
    if not user.is_authenticated:
        return None
    employee = Employee.objects.select_related("role", "company").filter(user=user, is_active=True).first()
    # A session that still owes its second factor (the company requires one) opens no socket.
    return Viewer.of(employee) if employee and access.may_use_session(employee) else None


def _arrived(employee_id: int, company_id: int) -> dict[int, str]:
    """An inbox tab opened: a heartbeat, maybe online again; colleagues' presence as it is now."""
    presence.heartbeat(employee_id)
    account_actions.presence_from_inbox(employee_id, connecting=True)
    return presence.presence_map(company_id)


def _pinged(employee_id: int) -> None:
    """A heartbeat; one that finds them automatically away (the tab woke up) brings them back."""
    if not presence.heartbeat(employee_id):
        account_actions.presence_from_inbox(employee_id, connecting=False)


def _pinged_many(employee_ids: list[int]) -> None:
    """Many tabs' heartbeats in one statement; each that finds them automatically away brings them back."""
    online = presence.heartbeats(employee_ids)
    for employee_id in employee_ids:
        if employee_id not in online:
            try:
                account_actions.presence_from_inbox(employee_id, connecting=False)
            except Exception:
                log.exception("could not bring employee %s back online", employee_id)


class Heartbeats:
    """The pings of one event loop's inbox sockets, written together.

    Pings that arrive while a write is under way wait for the next one, which takes them all
    (``_pinged_many``): 300 tabs pinging together make a handful of statements, not 300, that
    would share the database pool and the interpreter with everything else the process does.
    """

    def __init__(self) -> None:
        self.waiting: dict[int, list[asyncio.Future]] = {}
        self.writing: asyncio.Task | None = None

    async def beat(self, employee_id: int) -> None:
        future = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(employee_id, []).append(future)
        if self.writing is None or self.writing.done():
            self.writing = asyncio.ensure_future(self._write())
        await future

    async def _write(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, {}
            outcome: BaseException | None = None
            try:
                await socket_db(_pinged_many)(sorted(batch))
            except Exception as exc:
                outcome = exc
            for futures in batch.values():
                for future in futures:
                    if future.done():  # its socket went away meanwhile
                        continue
                    if outcome is None:
                        future.set_result(None)
                    else:
                        future.set_exception(outcome)


_heartbeats: dict[asyncio.AbstractEventLoop, Heartbeats] = {}


def heartbeats() -> Heartbeats:
    """The running loop's heartbeat writer (a test may run several loops)."""
    loop = asyncio.get_running_loop()
    writer = _heartbeats.get(loop)
    if writer is None:
        for closed in [other for other in _heartbeats if other.is_closed()]:
            del _heartbeats[closed]
        writer = _heartbeats[loop] = Heartbeats()
    return writer


class InboxConsumer(LiveJsonConsumer):
    socket_kind = "inbox"
    # The relay tells this socket how far the log is (``inbox_position``): it resumes by event id.
    wants_position = True

    async def connect(self) -> None:
        self.viewer = await _viewer_for(self.scope["user"])
        self.joined: list[str] = []
        # Set once the employee's access changed: nothing more reaches this socket.
        self.stale = False
        # A socket can be in two groups that both get an event (team and own): send it once.
        self.recent: deque[int] | None = None
        self.recent_notices: deque[str] | None = None
        self.heartbeat: asyncio.Task | None = None
        if self.viewer is None:
            await self.close(code=UNAUTHENTICATED)
            return
        # The personal group carries notices for this employee's own tabs (read elsewhere).
        self.joined = [
            *self.viewer.groups(),
            presence_group(self.viewer.company_id),
            notices.personal_group(self.viewer.employee_id),
        ]
        self.typing_throttle = TypingThrottle()
        await self.join_layer(self.joined)  # typing, presence, notices
        # Events; and, on the personal group, access changes of this process, in order with them.
        await self.join_relay([*self.viewer.groups(), notices.personal_group(self.viewer.employee_id)])
        await self.accept()
        colleagues = await socket_db(_arrived)(self.viewer.employee_id, self.viewer.company_id)
        await self.send_json(
            {
                "type": "hello",
                "employee_id": self.viewer.employee_id,
                "ping_seconds": settings.REALTIME_PING_SECONDS,
                "presence": colleagues,
            }
        )

    async def disconnect(self, code: int) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        await self.leave_relay()
        await self.leave_layer()

    async def receive_json(self, content: Any, **kwargs) -> None:
        if not isinstance(content, dict):
            await self._error("bad_message", _("Expected a JSON object."))
            return
        if self.stale:
            return
        kind = content.get("type")
        after = content.get("after")
        # A resume point is required to resume, optional with a ping (then it polls for events).
        if (kind == "resume" or (kind == "ping" and after is not None)) and not is_id(after):
            await self._error("bad_resume", _("after must be an event id (0 or more)."))
            return
        if kind == "resume":
            await self._catch_up(after)
        elif kind == "ping" and not settings.REALTIME_CATCHUP_ON_PING:
            self._heartbeat_soon()
        elif kind == "ping":
            # Without a shared channel layer (the embedded default), what other processes
            # write (the Celery worker: events, automatic away) never reaches this socket's
            # groups: the pong carries colleagues' presence and we poll for events, in turn
            # with the events this socket is sent.
            await socket_db(_pinged)(self.viewer.employee_id)
            await self.join_layer()
            colleagues = await socket_db(presence.presence_map)(self.viewer.company_id)
            await self.send_json({"type": "pong", "presence": colleagues})
            if after is not None:
                await self._catch_up(after)
        elif kind == "typing":
            await self._typing(content)
        else:
            await self._error("unknown_type", _("Unknown message type."))

    def _heartbeat_soon(self) -> None:
        """A ping's heartbeat, off this socket's turn: events keep flowing while it waits.

        Handled in turn, a ping held the socket for its database write and its Redis round
        trips; the browsers of a company that reconnected together (a restart) ping together,
        and an event then reached the last of 300 sockets only after all 300 heartbeats
        (bench/README.md, "One event to 300 sockets: the tail"). One heartbeat at a time per
        socket: a ping arriving while one is under way is answered by that one.
        """
        if self.heartbeat is None or self.heartbeat.done():
            self.heartbeat = asyncio.ensure_future(self._heartbeat())

    async def _heartbeat(self) -> None:
        try:
            await heartbeats().beat(self.viewer.employee_id)
            await self.join_layer()  # again if Redis lost the groups: typing is heard again
            async with self.handling:  # the pong in turn with everything else this socket sends
                if self.relay is not None:
                    await self.send_json({"type": "pong"})
        except OSError:  # the client went away meanwhile
            pass
        except Exception as exc:  # the database away: the next ping tries again (one line each, no traceback)
            log.warning("an inbox ping's heartbeat failed: %r", exc)

    async def _typing(self, content: dict[str, Any]) -> None:
        conversation_id, mode, typing = content.get("conversation_id"), content.get("mode"), content.get("typing")
        if not is_id(conversation_id) or mode not in notices.TYPING_MODES or not isinstance(typing, bool):
            await self._error("bad_typing", _("A typing notice needs a conversation_id, a mode and typing."))
            return
        if not self.typing_throttle.allows((conversation_id, mode), typing):
            return
        sends = await socket_db(notices.agent_typing)(
            employee_id=self.viewer.employee_id, conversation_id=conversation_id, mode=mode, typing=typing
        )
        await notices.send_all_async(sends)

    async def _catch_up(self, after: int) -> None:
        try:
            answer = await socket_db(catch_up)(self.viewer, after)
        except FutureResume:
            await self._error("bad_resume", _("after must be the id of an event this inbox has received."))
            return
        if answer is None:  # their access changed and the notice that says so was lost
            await self._access_changed()
            return
        events, reset = answer
        fresh = [event for event in events if not self._sent(event["id"])]
        if fresh:
            self._remember(event["id"] for event in fresh)
        await self.send_json({"type": "catchup", "events": fresh, "reset": reset})

    def _sent(self, event_id: int) -> bool:
        return self.recent is not None and event_id in self.recent

    def _remember(self, event_ids: Iterable[int]) -> None:
        if self.recent is None:
            self.recent = deque(maxlen=RECENT_EVENTS)
        self.recent.extend(event_ids)

    async def inbox_access_changed(self, message: dict[str, Any]) -> None:
        await self._access_changed()

    async def _access_changed(self) -> None:
        """The socket joined its groups by the access its employee had: it stops, the page reloads.

        The page's list was read with the old access too, so it reloads (the ``reset``
        answer) rather than merely reconnecting; events arriving meanwhile are dropped.
        """
        if self.stale:
            return
        self.stale = True
        await self.send_json({"type": "catchup", "events": [], "reset": True})
        await self.close(code=ACCESS_CHANGED)

    async def inbox_presence(self, message: dict[str, Any]) -> None:
        # Our own changes reach this page another way (the hello, the menu's own answer).
        if message["employee_id"] != self.viewer.employee_id:
            await self.send_json(
                {"type": "presence", "employee_id": message["employee_id"], "presence": message["presence"]}
            )

    async def inbox_event(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if self.stale or self._sent(event["id"]) or not audience_sees(self.viewer, event):
            return
        self._remember((event["id"],))
        visible = self.viewer.sees(event["payload"]["conversation"])
        await self.send_shared(message, visible, lambda: {"type": "event", "event": {**event, "visible": visible}})

    async def inbox_position(self, message: dict[str, Any]) -> None:
        # From the relay, after every event it sent this socket up to that id: the page may
        # resume from here (it saw all it may see before it).
        if not self.stale:
            await self.send_json({"type": "position", "event_id": message["event_id"]})

    async def inbox_typing(self, message: dict[str, Any]) -> None:
        notice = message["notice"]
        # Never echoed to the typist's own tabs; never to a viewer who may not see the chat.
        if (
            self.stale
            or notice.get("employee_id") == self.viewer.employee_id
            or not self.viewer.sees(message["snapshot"])
        ):
            return
        if self.recent_notices is None:
            self.recent_notices = deque(maxlen=RECENT_NOTICES)
        elif message["id"] in self.recent_notices:  # reached us through two of our groups
            return
        self.recent_notices.append(message["id"])
        await self.send_json(notice)

    async def inbox_notice(self, message: dict[str, Any]) -> None:
        if not self.stale:
            await self.send_json(message["notice"])
