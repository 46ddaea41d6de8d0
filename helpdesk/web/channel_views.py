"""Settings → Channels: the list, Add channel for every registered kind, edit, disable, enable, remove.

The common fields (name, team, greeting, the satisfaction survey) are this page's form; each kind's own settings are its
adapter's form (``admin_actions.settings_form``), shown below them in the same <form>. Writes go
through ``helpdesk.accounts.actions``; nothing here knows a kind by name.
"""

from __future__ import annotations

import io
from typing import Any

import segno
from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.actions.channels import CSAT_QUESTION_LIMIT, GREETING_LIMIT
from helpdesk.accounts.permissions import Perm
from helpdesk.conversations import access, adapters
from helpdesk.conversations.adapters import ChannelLink, SetupError
from helpdesk.conversations.secrets import SecretsUnreadable
from helpdesk.errors import ActionError

from .decorators import employee_required
from .settings_forms import show_action_error


class ChannelForm(forms.Form):
    """What every channel has, whatever its kind."""

    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    team = forms.ModelChoiceField(
        label=gettext_lazy("Team"),
        help_text=gettext_lazy("New conversations from this channel go to this team's queue."),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("No team"),
    )
    greeting = forms.CharField(
        label=gettext_lazy("Greeting"),
        help_text=gettext_lazy("The first words a customer sees when they start a chat."),
        max_length=GREETING_LIMIT,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    csat = forms.BooleanField(
        label=gettext_lazy("Ask the customer to rate the conversation once it is resolved"),
        help_text=gettext_lazy("A rating from 1 to 5 with an optional comment, once per resolution (CSAT)."),
        required=False,
    )
    csat_question = forms.CharField(
        label=gettext_lazy("Survey question"),
        help_text=gettext_lazy("Leave empty for the default question, in the customer's language."),
        max_length=CSAT_QUESTION_LIMIT,
        required=False,
    )

    def __init__(self, *args, employee, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = access.company_teams(employee).order_by("name")


class LinkForm(forms.Form):
    """Make a link for a source of the admin's choosing (the adapter says which are allowed)."""

    start = forms.CharField(
        label=gettext_lazy("Source"),
        help_text=gettext_lazy("Kept on each contact who starts a chat by this link, e.g. instagram or spring-flyer."),
        max_length=64,
    )


QR_TYPES = {"png": "image/png", "svg": "image/svg+xml"}


def qr_code(text: str) -> segno.QRCode:
    return segno.make(text, error="m")


def _shown_link(channel, link: ChannelLink) -> dict[str, Any]:
    def qr_url(fmt: str) -> str:
        url = reverse("web:channel_link_qr", kwargs={"channel_id": channel.pk, "kind": channel.kind, "fmt": fmt})
        return f"{url}?{urlencode({'start': link.source})}"

    return {"source": link.source, "url": link.url, "png": qr_url("png"), "svg": qr_url("svg")}


def _links(request: HttpRequest, channel, setup) -> tuple[list[dict[str, Any]], LinkForm | None]:
    """The adapter's links for the page, plus the one made for a typed source (``?start=``)."""
    links = setup.links(channel)
    if not links:
        return [], None
    form = LinkForm(request.GET if "start" in request.GET else None)
    if form.is_bound and form.is_valid():
        try:
            made = setup.link(channel, form.cleaned_data["start"])
        except SetupError as error:
            form.add_error("start", error.message)
        else:
            if made is not None and made not in links:
                links.append(made)
    return [_shown_link(channel, link) for link in links], form


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    return render(request, template, {**context, "settings_page": True, "section": "web:channels"})


def _base_url(request: HttpRequest) -> str:
    return settings.PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def _show_error(common: forms.Form, kind_form: forms.Form, error: ActionError) -> None:
    if isinstance(error, admin_actions.ChannelSettingsInvalid):
        return  # the kind's form has already put each message on its field
    target = kind_form if error.field in kind_form.fields else common
    show_action_error(target, error)


@employee_required(Perm.MANAGE_CHANNELS)
def channel_list(request: HttpRequest) -> HttpResponse:
    channels = access.company_channels(request.employee).select_related("team").order_by("name", "pk")
    return _page(
        request,
        "web/channel_list.html",
        {"channels": channels, "kinds": [(adapter.kind, adapter.label) for adapter in adapters.adapters()]},
    )


@employee_required(Perm.MANAGE_CHANNELS)
def channel_add(request: HttpRequest, kind: str) -> HttpResponse:
    try:
        adapter = adapters.adapter_for(kind)
    except LookupError:
        raise Http404(_("There is no such kind of channel.")) from None
    posted = request.POST if request.method == "POST" else None
    common = ChannelForm(posted, employee=request.employee)
    kind_form = admin_actions.settings_form(kind, posted)
    if posted is not None and common.is_valid() and kind_form.is_valid():
        try:
            channel = admin_actions.add_channel(
                by=request.employee,
                kind=kind,
                name=common.cleaned_data["name"],
                team=common.cleaned_data["team"],
                greeting=common.cleaned_data["greeting"],
                csat=common.cleaned_data["csat"],
                csat_question=common.cleaned_data["csat_question"],
                values=kind_form.cleaned_data,
            )
        except ActionError as error:
            _show_error(common, kind_form, error)
        else:
            flash.success(request, _("Channel added."))
            return redirect("web:channel", channel_id=channel.pk)
    return _page(request, "web/channel_add.html", {"label": adapter.label, "form": common, "kind_form": kind_form})


@employee_required(Perm.MANAGE_CHANNELS)
def channel_detail(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = access.get_channel(request.employee, channel_id)
    adapter = adapters.adapter_for(channel.kind)
    posted = request.POST if request.method == "POST" else None
    initial = {
        "name": channel.name,
        "team": channel.team_id,
        "greeting": channel.settings.get("greeting", ""),
        "csat": bool(channel.settings.get("csat")),
        "csat_question": channel.settings.get("csat_question", ""),
    }
    common = ChannelForm(posted, employee=request.employee, initial=initial)
    unreadable = False
    try:
        kind_form = admin_actions.settings_form(channel.kind, posted, channel=channel)
    except SecretsUnreadable:
        # A key was dropped before its secrets were re-encrypted: the credentials must be typed again.
        unreadable = True
        kind_form = admin_actions.settings_form(channel.kind, posted)
    if posted is not None and common.is_valid() and kind_form.is_valid():
        try:
            admin_actions.update_channel(
                channel,
                by=request.employee,
                name=common.cleaned_data["name"],
                team=common.cleaned_data["team"],
                greeting=common.cleaned_data["greeting"],
                csat=common.cleaned_data["csat"],
                csat_question=common.cleaned_data["csat_question"],
                values=kind_form.cleaned_data,
            )
        except ActionError as error:
            _show_error(common, kind_form, error)
        else:
            flash.success(request, _("Saved."))
            return redirect("web:channel", channel_id=channel.pk)
    snippet = adapter.setup.embed_code(channel, base_url=_base_url(request))
    links, link_form = _links(request, channel, adapter.setup)
    is_demo = request.employee.company.is_demo
    return _page(
        request,
        "web/channel_detail.html",
        {
            "channel": channel,
            "label": adapter.label,
            "form": common,
            "kind_form": kind_form,
            "unreadable": unreadable,
            "provider_url": adapter.setup.provider_url(channel, base_url=_base_url(request)),
            "snippet": snippet,
            "links": links,
            "link_form": link_form,
            # The public demo website shows only the demo company's widget (see views.demo).
            "demo_url": reverse("web:demo", args=[channel.public_key]) if snippet and is_demo else "",
        },
    )


@employee_required(Perm.MANAGE_CHANNELS)
def channel_link_qr(request: HttpRequest, channel_id: int, kind: str, fmt: str) -> HttpResponse:
    """A channel link's QR code as a PNG or SVG download (``?start=<source>``; none: the default link)."""
    channel = access.get_channel(request.employee, channel_id)
    if kind != channel.kind or fmt not in QR_TYPES:
        raise Http404(_("There is no such QR code."))
    setup = adapters.adapter_for(channel.kind).setup
    try:
        if "start" in request.GET:
            link = setup.link(channel, request.GET["start"])
        else:
            link = next(iter(setup.links(channel)), None)
    except SetupError as error:
        return HttpResponseBadRequest(error.message, content_type="text/plain; charset=utf-8")
    if link is None:
        raise Http404(_("This channel has no link."))
    out = io.BytesIO()
    qr_code(link.url).save(out, kind=fmt, scale=8, border=4)
    filename = f"{channel.kind}-{channel.pk}-{link.source}-qr.{fmt}"
    response = HttpResponse(out.getvalue(), content_type=QR_TYPES[fmt])
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


STATE_ACTIONS = {
    "disable": (admin_actions.disable_channel, gettext_lazy("Channel disabled.")),
    "enable": (admin_actions.enable_channel, gettext_lazy("Channel enabled.")),
    "remove": (admin_actions.remove_channel, gettext_lazy("Channel removed. Its conversations stay.")),
}


@require_POST
@employee_required(Perm.MANAGE_CHANNELS)
def channel_state(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = access.get_channel(request.employee, channel_id)
    action = STATE_ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        flash.error(request, _("Unknown action."))
        return redirect("web:channel", channel_id=channel.pk)
    write, done = action
    try:
        write(channel, by=request.employee)
    except ActionError as error:
        flash.error(request, error.message)
        return redirect("web:channel", channel_id=channel.pk)
    flash.success(request, done)
    if request.POST["action"] == "remove":
        return redirect("web:channels")
    return redirect("web:channel", channel_id=channel.pk)
