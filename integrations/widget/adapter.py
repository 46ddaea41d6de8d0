"""The website widget, as core code sees it: live socket pushes, no worker delivery."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from helpdesk.conversations.adapters import Adapter
from helpdesk.conversations.models import ChannelKind, Conversation
from helpdesk.conversations.snapshots import conversation_summary
from integrations.outbound import customer_effect

from . import outbound
from .setup import WidgetSetup


class WidgetAdapter(Adapter):
    def socket_sends(self, event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        if event["type"] == "conversation.resolved" and event["payload"].get("survey"):
            return [outbound.visitor_survey(event)]
        if event["type"] in ("conversation.reopened", "conversation.woken"):
            return [outbound.visitor_survey(event)]  # the survey, if shown, goes away
        if event["type"] == "conversation.rated":
            return [outbound.visitor_rated(event)]
        effect = customer_effect(event)
        if effect is None:
            return []
        what, message = effect
        conversation = event["payload"]["conversation"]
        if what == "remove":
            return [outbound.visitor_remove(conversation, message)]
        return [outbound.visitor_send(conversation, message)]

    def typing_sends(self, conversation: Conversation, *, name: str, typing: bool) -> list[tuple[str, dict[str, Any]]]:
        return [outbound.visitor_typing(conversation_summary(conversation), name=name, typing=typing)]


ADAPTER = WidgetAdapter(
    kind=ChannelKind.WIDGET.value,
    label=_("Website widget"),
    website_snippet=True,
    inline_survey=True,
    setup=WidgetSetup(),
)
