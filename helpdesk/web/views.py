"""The agents' and admins' pages. Reads go through access/queries, writes through actions."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import F, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext, pgettext

from helpdesk.accounts.models import Employee
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access, queries, snooze
from helpdesk.conversations.adapters import adapters
from helpdesk.conversations.models import Channel, Conversation, Priority, Status
from helpdesk.conversations.profiles import contact_profile
from helpdesk.conversations.snapshots import conversation_summary, message_data
from helpdesk.events.models import Event

from .decorators import employee_required
from .inbox_assignment import inbox_assignment_state, inbox_colleagues

VIEW_LABELS = {
    "mine": gettext_lazy("Mine"),
    "unassigned": gettext_lazy("Unassigned"),
    "all": gettext_lazy("All"),
    "mentions": gettext_lazy("Mentions"),
}
LIST_LIMIT = 100


def inbox_strings() -> dict[str, str]:
    """The words the inbox script shows, translated for the current language."""
    return {
        # One conversation's state; the tabs (Status.choices) name whole lists.
        "open": pgettext("one conversation", "Open"),
        "snoozed": pgettext("one conversation", "Snoozed"),
        "resolved": pgettext("one conversation", "Resolved"),
        "unassigned": pgettext("one conversation", "Unassigned"),
        "assignedTo": _("Assigned to %(name)s"),
        "note": _("Internal note"),
        "notePlaceholder": _("Write a note for your team — the customer never sees it"),
        "replyPlaceholder": _("Write a reply… (Enter to send, Shift+Enter for a new line)"),
        "live": _("Live"),
        "reconnecting": _("Reconnecting…"),
        "deleted": _("Message deleted"),
        "failed": _("Could not send: %(reason)s"),
        "snoozedUntil": _("Snoozed until %(time)s"),
        "gone": _("This conversation has moved out of your inbox."),
        "newConversation": _("New conversation"),
        "visitor": _("Visitor #%(id)s"),
        "delete": _("Delete"),
        "restore": _("Restore"),
        "deletedBy": _("Deleted by %(name)s at %(time)s"),
        "confirmDeleteMessage": _("Delete this message? Admins can restore it."),
        "confirmDeleteConversation": _("Move this conversation to the Trash? Admins can restore it from there."),
        "trashed": _("This conversation was moved to the Trash."),
        # Delivery of messages to the customer through Telegram, VK, … (static/app/inbox/delivery.js).
        "deliveryQueued": _("Sending…"),
        "deliverySending": _("Sending…"),
        "deliverySent": _("Sent"),
        "deliveryRetrying": _("Not sent yet, trying again: %(error)s"),
        "deliveryFailed": _("Not delivered: %(error)s"),
        "deliveryUnknown": _(
            "Maybe not delivered: the send was interrupted. Sending it again may show it to the customer twice."
        ),
        "deliveryUnknownWhy": _("Maybe not delivered: %(error)s Sending it again may show it to the customer twice."),
        "retry": _("Retry"),
        # Files (static/app/inbox/files.js).
        "pastedFile": _("Pasted file"),
        "removeFile": _("Remove this file"),
        "uploadFailed": _("Upload failed (%(status)s)."),
        "uploadNetwork": _("Upload failed: the connection was lost."),
        "uploadsPending": _("Wait until the files have uploaded."),
        "filePending": _("being fetched…"),
        "fileNotAvailable": _("not available: %(error)s"),
        "file_refused": _("refused"),
        "file_failed": _("could not be fetched"),
        # Presence, priority and reassignment (static/app/inbox/{presence,priority,assignment}.js).
        "presenceOnline": pgettext("presence", "online"),
        "presenceAway": pgettext("presence", "away"),
        "presenceOffline": pgettext("presence", "offline"),
        "agentPresence": _("%(name)s · %(presence)s"),
        "assignee": _("Assignee"),
        "team": _("Team"),
        "priority": _("Priority"),
        "noTeam": _("No team"),
        "inTeam": _("In %(team)s"),
        "otherAgents": _("Everyone else"),
        "order": _("Order"),
        "orderNewest": _("Newest"),
        "orderPriority": _("Priority first"),
        "someone": _("Someone"),
        "assignedBy": _("%(actor)s assigned this to %(name)s"),
        "assignedAuto": _("Assigned to %(name)s automatically"),
        "unassignedBy": _("%(actor)s unassigned this"),
        "releasedBy": _("%(actor)s deactivated the agent it was assigned to; it went back to the queue"),
        "movedBy": _("%(actor)s moved this to %(team)s"),
        "movedAssignedBy": _("%(actor)s moved this to %(team)s and assigned it to %(name)s"),
        "noTeamBy": _("%(actor)s took this out of its team"),
        "priorityBy": _("%(actor)s set the priority to %(priority)s"),
        "snoozedBy": _("%(actor)s snoozed this until %(time)s"),
        "wokeTimeLine": _("Woke up: its snooze time came"),
        "wokeCustomerLine": _("Woke up: the customer wrote"),
        "wokeTeammateLine": _("Woke up: %(actor)s wrote in it"),
        "unsnoozedBy": _("%(actor)s unsnoozed this"),
        "resolvedBy": _("%(actor)s resolved this"),
        "resolvedAuto": _("Resolved by a quick answer"),
        "reopenedBy": _("%(actor)s reopened this"),
        "reopenedCustomer": _("Reopened: the customer wrote"),
        "ratedLine": _("Rated %(rating)s/5"),
        "ratedCommentLine": _("Rated %(rating)s/5: %(comment)s"),
        # Snoozing, and waking up again
        "snoozePick": _("Pick a date and time…"),
        "snoozeAt": _("Snooze until this time"),
        "wakesAt": _("Wakes %(time)s"),
        "wokeTime": _("The conversation with %(name)s woke up: its snooze time came."),
        "wokeCustomer": _("The conversation with %(name)s woke up: the customer wrote."),
        "wokeTeammate": _("The conversation with %(name)s woke up: %(actor)s wrote in it."),
        "wokeManual": _("%(actor)s unsnoozed the conversation with %(name)s."),
        # Mentions
        "mentionedYou": _("%(actor)s mentioned you in a note on the conversation with %(name)s."),
        "mentionedTeam": _("%(actor)s mentioned %(team)s in a note on the conversation with %(name)s."),
        "mentionTeam": pgettext("a kind of mention", "team"),
        "mentioned": _("You or your team were mentioned here"),
        # Typing
        "visitorTyping": _("The visitor is typing…"),
        "agentTypingReply": _("%(name)s is typing a reply…"),
        "agentTypingNote": _("%(name)s is writing a note…"),
        # Bulk actions
        "selectConversation": _("Select this conversation"),
        "selected": _("Selected: %(count)s"),
        "selectAll": _("Select all"),
        "clearSelection": _("Clear"),
        "assignToMe": _("Assign to me"),
        "assignTo": _("Assign to…"),
        "toTeam": _("Team %(name)s"),
        "resolve": pgettext("action", "Resolve"),
        "bulkPriority": _("Priority…"),
        "snooze": pgettext("action", "Snooze"),
        "notChanged": _("Not changed: %(list)s"),
        "close": _("Close"),
        # Canned responses ("/" in the reply box), automatic replies, the contact profile.
        **contact_panel_strings(),
    }


def contact_panel_strings() -> dict[str, str]:
    """The words of the "/" menu, of marked messages and of the contact profile panel."""
    return {
        "cannedEmpty": _("No canned response matches. Add them under Settings → Canned responses."),
        "cannedPersonal": pgettext("canned response", "Personal"),
        "cannedHint": _("↑ ↓ to choose, Enter to insert, Esc to close"),
        "automaticReply": _("Automatic reply"),
        "receivedWhileBlocked": _("Received while blocked"),
        "contact": _("Contact"),
        "contactName": pgettext("person", "Name"),
        "contactEmail": _("E-mail"),
        "contactPhone": _("Phone"),
        "identities": _("Channels"),
        "attributes": _("Attributes"),
        "noAttributes": _("No attributes."),
        "attributeName": _("Attribute"),
        "attributeValue": _("Value"),
        "addAttribute": _("Add an attribute"),
        "remove": _("Remove"),
        "previousConversations": _("Other conversations"),
        "ratings": _("Ratings"),
        "noPreviousConversations": _("No other conversations."),
        "edit": _("Edit"),
        "save": _("Save"),
        "cancel": _("Cancel"),
        "block": _("Block"),
        "unblock": _("Unblock"),
        "blockFor": _("Block for"),
        "block1": ngettext("%(count)s day", "%(count)s days", 1) % {"count": 1},
        "block7": ngettext("%(count)s day", "%(count)s days", 7) % {"count": 7},
        "block30": ngettext("%(count)s day", "%(count)s days", 30) % {"count": 30},
        "blockForever": _("Until unblocked"),
        "blockReason": _("Reason"),
        "blockReasonPlaceholder": _("Why? Your colleagues will see it."),
        "blockedUntil": _("Blocked until %(time)s"),
        "blockedIndefinitely": _("Blocked until unblocked"),
        "blockedBy": _("by %(name)s"),
        "blockedNote": _("Their messages are kept, but open nothing and notify nobody."),
        "confirmUnblock": _("Unblock this contact?"),
        "edited": _("edited"),
        "editedAt": _("Edited by the customer at %(time)s"),
        "consents": _("Consent to data processing"),
        "consentAccepted": _("Accepted on %(channel)s at %(time)s (text version %(version)s)"),
        "consentDeclined": _("Declined on %(channel)s at %(time)s"),
        "consentWithdrawn": _("Withdrawn on %(channel)s at %(time)s"),
        "channelBroken": _("The channel %(name)s stopped working: fix it in Settings → Channels."),
    }


def broken_channels(employee: Employee) -> list[dict[str, Any]]:
    """Channels whose provider refused their credentials, for those who can repair them."""
    if not employee.can(Perm.MANAGE_CHANNELS):
        return []
    rows = access.company_channels(employee).filter(broken_at__isnull=False, removed_at__isnull=True)
    return [
        {
            "channel_id": channel.pk,
            "channel_name": channel.name,
            "reason": _(channel.broken_reason),
            "at": channel.broken_at.isoformat(),
            "url": reverse("web:channel", args=[channel.pk]),
        }
        for channel in rows.order_by("name", "pk")
    ]


def home(request: HttpRequest) -> HttpResponse:
    return redirect("web:inbox")


def workflow_state(
    employee: Employee,
    conversation: Conversation | None,
    *,
    teams: list[dict[str, Any]] | None = None,
    my_teams: list[int] | None = None,
) -> dict[str, Any]:
    """What snoozing, mentions and bulk actions need in the inbox page's state.

    ``teams`` (the company's, ``id`` and ``name`` by name) and ``my_teams`` (the employee's team
    ids) when the caller has read them already.
    """
    if teams is None:
        teams = list(access.company_teams(employee).order_by("name", "pk").values("id", "name"))
    mentionable = {"employees": [], "teams": []}
    if conversation is not None and employee.can(Perm.ADD_NOTES):
        # Only those who can see the conversation are offered; the note's action refuses others.
        audience = access.audience(conversation)
        mentionable = {
            "employees": list(
                audience.exclude(pk=employee.pk).order_by("display_name").values("id", name=F("display_name"))
            ),
            "teams": list(
                access.company_teams(employee)
                .filter(members__in=audience)
                .distinct()
                .order_by("name")
                .values("id", "name")
            ),
        }
    return {
        "myTeams": access.team_ids(employee) if my_teams is None else my_teams,
        "teams": teams,
        "snoozePresets": [{"key": key, "label": str(label)} for key, label in snooze.PRESETS.items()],
        "priorities": [{"value": value, "label": str(label)} for value, label in Priority.choices],
        "mentionable": mentionable,
    }


@employee_required()
def inbox(request: HttpRequest, conversation_id: int | None = None) -> HttpResponse:
    employee = request.employee
    view = request.GET.get("view", "mine")
    status = request.GET.get("status", Status.OPEN)
    if view not in queries.VIEWS or status not in queries.STATUSES:
        raise Http404
    # The list order the agent chose (the page's script keeps it in a cookie).
    ordering = request.COOKIES.get("inbox_ordering", "newest")
    ordering = ordering if ordering in queries.ORDERINGS else "newest"
    with queries.one_snapshot():
        # The page and the event id its socket resumes from come from one snapshot. The
        # socket re-reads a window before that id (late committers); the ids in that window
        # already shown here are listed, so the page does not apply them twice. One query:
        # the window is counted back from the newest id, read in the same statement.
        events = Event.objects.filter(company_id=employee.company_id)
        newest = events.order_by("-id").values("id")[:1]
        seen_event_ids = sorted(
            events.filter(id__gt=Subquery(newest) - settings.EVENT_CATCHUP_OVERLAP).values_list("id", flat=True)
        )
        last_event_id = seen_event_ids[-1] if seen_event_ids else 0
        # Read once for the whole page: the list, the counts and the page's state all need them.
        my_teams = access.team_ids(employee)
        rows = list(
            queries.inbox(employee, view=view, status=status, teams=my_teams).order_by(*queries.ORDERINGS[ordering])[
                :LIST_LIMIT
            ]
        )
        conversation = thread = profile = None
        if conversation_id is not None:
            conversation = access.get_conversation(employee, conversation_id)
            reveal = access.sees_deleted(employee)
            thread = [message_data(m, reveal_deleted=reveal) for m in queries.thread(conversation)]
            profile = contact_profile(employee, conversation)
        # The Mentions view's list, when it is whole (under the page's limit), already says which
        # of the tab's mentioned conversations have an unread mention: the sidebar's Mentions
        # count is those rows, not a second walk of the reader's mentions.
        whole_mentions = view == "mentions" and len(rows) < LIST_LIMIT
        sidebar = queries.counts(employee, status=status, teams=my_teams, count_mentions=not whole_mentions)
        if whole_mentions:
            sidebar["mentions"] = sum(1 for c in rows if c.mention_unread)
        colleagues = inbox_colleagues(employee)  # the active ones: teammates, presence and the assignee picker
        teams = list(access.company_teams(employee).order_by("name", "pk").values("id", "name"))
        assignment = inbox_assignment_state(employee, conversation, colleagues=colleagues, teams=teams)
    return render(
        request,
        "web/inbox.html",
        {
            "employee": employee,
            "view": view,
            "status": status,
            "views": [(key, VIEW_LABELS[key], sidebar[key]) for key in queries.VIEWS],
            "statuses": Status.choices,
            "conversation": conversation,
            "state": {
                "me": employee.pk,
                "view": view,
                "status": status,
                "lastEventId": last_event_id,
                "seenEventIds": seen_event_ids,
                "timezone": employee.company.timezone,
                "conversations": [
                    {
                        **conversation_summary(c),
                        "unread": c.unread,
                        "last_mention_message_id": c.last_mention_message_id,
                        "mention_unread": c.mention_unread,
                    }
                    for c in rows
                ],
                "conversation": conversation_summary(conversation) if conversation else None,
                "messages": thread or [],
                "contact": profile,
                "teammates": {t.pk: t.display_name for t in colleagues},
                "can": {
                    "reply": employee.can(Perm.REPLY),
                    "note": employee.can(Perm.ADD_NOTES),
                    "assign": employee.can(Perm.ASSIGN),
                    "resolve": employee.can(Perm.RESOLVE),
                    "deleteMessages": employee.can(Perm.DELETE_MESSAGES),
                    "seeDeleted": access.sees_deleted(employee),
                    "restore": employee.can(Perm.RESTORE),
                    "deleteConversation": employee.can(Perm.DELETE_CONVERSATIONS),
                    "manageContacts": employee.can(Perm.MANAGE_CONTACTS),
                    "blockContacts": employee.can(Perm.BLOCK_CONTACTS),
                    "snooze": employee.can(Perm.SNOOZE),
                },
                **workflow_state(employee, conversation, teams=teams, my_teams=my_teams),
                "maxChars": settings.MESSAGE_MAX_CHARS,
                "ordering": ordering,
                **assignment,
                "brokenChannels": broken_channels(employee),
                "i18n": inbox_strings(),
            },
        },
    )


def demo(request: HttpRequest, public_key: str | None = None) -> HttpResponse:
    """A sample customer website with the widget on it, so anyone can try the chat.

    Only for the demo company seed_demo made: anyone may open this page, so it must never name
    a real company or hand out its widget key. Anything else is a 404.
    """
    on_websites = [adapter.kind for adapter in adapters() if adapter.website_snippet]
    channels = Channel.objects.filter(kind__in=on_websites, archived_at__isnull=True, company__is_demo=True)
    if public_key is None:
        channel = channels.order_by("pk").first()
        if channel is None:
            raise Http404(_("There is no demo website here."))
        return redirect("web:demo", public_key=channel.public_key)
    channel = get_object_or_404(channels.select_related("company"), public_key=public_key)
    return render(request, "web/demo.html", {"channel": channel})
