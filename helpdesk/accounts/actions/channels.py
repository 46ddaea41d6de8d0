"""Channels: add one of any registered kind, edit it, disable, enable and remove it.

A kind's settings are validated by its adapter's form (``settings_form``) and its credentials
checked against the provider (``Adapter.setup.check_credentials``) before anything is saved,
outside the transaction: that check talks to the network. The fields the adapter names in
``secret_fields`` are stored apart, encrypted (``Channel.secrets``), and the audit log records
that they changed, never their values.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django import forms
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from helpdesk.conversations import access, secrets
from helpdesk.conversations.adapters import Adapter, SetupError, adapter_for
from helpdesk.conversations.models import Channel
from helpdesk.errors import ActionError
from helpdesk.events import audit

from ..models import Employee, Team
from ..permissions import Perm
from ._common import _UNSET, _clean_name, _lock_company, _same_company

GREETING_LIMIT = 300
CSAT_QUESTION_LIMIT = 300
REASON_LIMIT = Channel._meta.get_field("broken_reason").max_length
log = logging.getLogger(__name__)


class ChannelSettingsInvalid(ActionError):
    """The kind's settings form refused the values; ``errors`` has each field's messages."""

    def __init__(self, errors: dict[str, list[str]]):
        field = next(iter(errors), None)
        message = errors[field][0] if field else _("Some fields are not valid.")
        super().__init__(message, code="invalid", field=None if field == "__all__" else field)
        self.errors = errors


def channel_state(channel: Channel) -> dict[str, Any]:
    """What the audit log shows of a channel: plain settings only, never a credential."""
    return {
        "name": channel.name,
        "team": channel.team.name if channel.team_id else None,
        "enabled": channel.enabled,
        "broken": channel.broken_at is not None,
        **channel.settings,
    }


def _adapter(kind: str) -> Adapter:
    try:
        return adapter_for(kind)
    except LookupError:
        message = _("Unknown channel kind: %(kind)s.") % {"kind": str(kind)[:50]}
        raise ActionError(message, code="bad_kind", field="kind") from None


def settings_form(kind: str, data: Any = None, *, channel: Channel | None = None) -> forms.Form:
    """The kind's settings form, bound to ``data`` when given.

    On a saved channel a secret left empty keeps the saved one, and no secret is ever rendered
    back into the page (the placeholder shows it masked).
    """
    adapter = _adapter(kind)
    stored = channel.secret_values() if channel is not None else {}
    if data is not None and channel is not None:
        data = {key: data.get(key) for key in adapter.setup.form.base_fields if key in data}
        for name in adapter.secret_fields:
            if not data.get(name) and stored.get(name):
                data[name] = stored[name]
    form = adapter.setup.form(data=data, initial=dict(channel.settings) if channel is not None else None)
    for name in adapter.secret_fields:
        field = form.fields.get(name)
        if field is None:
            continue
        attrs = {"autocomplete": "off"}
        if stored.get(name):
            attrs["placeholder"] = secrets.mask(stored[name])
            field.help_text = _("Saved. Leave empty to keep it.")
        field.widget = forms.PasswordInput(render_value=False, attrs=attrs)
    return form


def clean_settings(kind: str, data: Any, *, channel: Channel | None = None) -> dict[str, Any]:
    """The kind's settings from a page's POST or the API's JSON, validated; or ChannelSettingsInvalid."""
    form = settings_form(kind, data, channel=channel)
    if not form.is_valid():
        raise ChannelSettingsInvalid({key: [str(m) for m in messages] for key, messages in form.errors.items()})
    return form.cleaned_data


def _check_credentials(adapter: Adapter, values: dict[str, Any]) -> dict[str, Any]:
    try:
        return adapter.setup.check_credentials(values)
    except SetupError as exc:
        raise ActionError(exc.message, code="bad_credentials", field=exc.field) from None


def _clean_greeting(greeting: str | None) -> str:
    greeting = (greeting or "").strip()
    if len(greeting) > GREETING_LIMIT:
        raise ActionError(
            _("The greeting can be at most %(limit)s characters long.") % {"limit": GREETING_LIMIT},
            code="too_long",
            field="greeting",
        )
    return greeting


def _clean_csat_question(question: str | None) -> str:
    question = (question or "").strip()
    if len(question) > CSAT_QUESTION_LIMIT:
        raise ActionError(
            _("The survey question can be at most %(limit)s characters long.") % {"limit": CSAT_QUESTION_LIMIT},
            code="too_long",
            field="csat_question",
        )
    return question


def _split(adapter: Adapter, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    plain = {key: value for key, value in values.items() if key not in adapter.secret_fields}
    hidden = {key: str(values[key]) for key in adapter.secret_fields if values.get(key)}
    return plain, hidden


def add_channel(
    *,
    by: Employee,
    kind: str,
    name: str,
    team: Team | None = None,
    greeting: str = "",
    csat: bool = False,
    csat_question: str = "",
    values: dict[str, Any],
) -> Channel:
    """A new channel of ``kind`` with the kind's cleaned settings (``clean_settings``).

    ``csat``: ask customers to rate each resolved conversation (docs/csat.md), with
    ``csat_question`` instead of the default question when given.

    Credentials the provider refuses raise ActionError(code="bad_credentials") and save nothing.
    """
    access.require(by, Perm.MANAGE_CHANNELS)
    adapter = _adapter(kind)
    _same_company(by, team)
    name, greeting = _clean_name(name), _clean_greeting(greeting)
    survey = {"csat": bool(csat), "csat_question": _clean_csat_question(csat_question)}
    learned = _check_credentials(adapter, values)
    plain, hidden = _split(adapter, values)
    channel = _create(by, kind, name, team, {**plain, **learned, "greeting": greeting, **survey}, hidden)
    adapter.setup.after_save(channel)
    return channel


@transaction.atomic(durable=True)
def _create(by: Employee, kind: str, name: str, team: Team | None, plain: dict, hidden: dict) -> Channel:
    _lock_company(by.company_id)
    channel = Channel.objects.create(
        company_id=by.company_id, kind=kind, name=name, team=team, settings=plain, secrets=secrets.encrypt(hidden)
    )
    audit.record(
        "channel.added",
        company=by.company_id,
        actor=by,
        obj=channel,
        after={"kind": kind, **channel_state(channel), "credentials_set": sorted(hidden)},
    )
    return channel


def update_channel(
    channel: Channel,
    *,
    by: Employee,
    name: str = _UNSET,
    team: Team | None = _UNSET,
    greeting: str = _UNSET,
    csat: bool = _UNSET,
    csat_question: str = _UNSET,
    values: dict[str, Any] = _UNSET,
) -> Channel:
    """Rename a channel, route it to a team, change its greeting, its survey or its kind's settings.

    ``values``: the kind's cleaned settings, all of them (``clean_settings``). When they differ
    from the saved ones the credentials are checked again first.
    """
    access.require(by, Perm.MANAGE_CHANNELS)
    _same_company(by, channel, None if team is _UNSET else team)
    adapter = _adapter(channel.kind)
    if name is not _UNSET:
        name = _clean_name(name)
    if greeting is not _UNSET:
        greeting = _clean_greeting(greeting)
    survey: dict[str, Any] = {}
    if csat is not _UNSET:
        survey["csat"] = bool(csat)
    if csat_question is not _UNSET:
        survey["csat_question"] = _clean_csat_question(csat_question)
    plain = hidden = learned = None
    if values is not _UNSET:
        plain, hidden = _split(adapter, values)
        current = {key: channel.settings.get(key) for key in plain}
        # A broken channel's credentials are checked even if unchanged: saving it is the repair.
        if current != plain or hidden != channel.secret_values() or channel.broken_at is not None:
            learned = _check_credentials(adapter, values)
    channel = _update(channel, by, name, team, greeting, survey, plain, hidden, learned or {})
    adapter.setup.after_save(channel)
    return channel


@transaction.atomic(durable=True)
def _update(channel, by, name, team, greeting, survey, plain, hidden, learned) -> Channel:
    _lock_company(by.company_id)
    channel = Channel.objects.select_for_update(of=("self",)).select_related("team").get(pk=channel.pk)
    before = channel_state(channel)
    if name is not _UNSET:
        channel.name = name
    if team is not _UNSET:
        channel.team = team
    if greeting is not _UNSET:
        channel.settings = {**channel.settings, "greeting": greeting}
    if survey:
        channel.settings = {**channel.settings, **survey}
    changed_secrets: list[str] = []
    if plain is not None:
        channel.settings = {**channel.settings, **plain, **learned}
        stored = channel.secret_values()
        changed_secrets = sorted(key for key in {**stored, **hidden} if stored.get(key) != hidden.get(key))
        if changed_secrets:
            channel.secrets = secrets.encrypt(hidden)
        # Saved with credentials the provider just accepted: no longer broken.
        channel.broken_at, channel.broken_reason = None, ""
    channel.save(update_fields=["name", "team", "settings", "secrets", "broken_at", "broken_reason"])
    after = channel_state(channel)
    if changed_secrets:
        after["credentials_changed"] = changed_secrets  # which ones, never their values
    audit.record("channel.updated", company=by.company_id, actor=by, obj=channel, before=before, after=after)
    return channel


def _set_state(channel: Channel, *, by: Employee, action: str, disabled: bool, removed: bool = False) -> Channel:
    access.require(by, Perm.MANAGE_CHANNELS)
    _same_company(by, channel)
    with transaction.atomic(durable=True):
        _lock_company(by.company_id)
        channel = Channel.objects.select_for_update(of=("self",)).select_related("team").get(pk=channel.pk)
        if channel.removed_at is not None:
            raise ActionError(_("This channel has been removed."), code="removed")
        before = channel_state(channel)
        now = timezone.now()
        channel.archived_at = (channel.archived_at or now) if disabled else None
        if removed:
            channel.removed_at = now
        channel.save(update_fields=["archived_at", "removed_at"])
        audit.record(action, company=by.company_id, actor=by, obj=channel, before=before, after=channel_state(channel))
    _adapter(channel.kind).setup.after_save(channel)
    return channel


def disable_channel(channel: Channel, *, by: Employee) -> Channel:
    """Stop the channel: it takes no new messages and sends none, until enabled again."""
    return _set_state(channel, by=by, action="channel.disabled", disabled=True)


def enable_channel(channel: Channel, *, by: Employee) -> Channel:
    return _set_state(channel, by=by, action="channel.enabled", disabled=False)


def remove_channel(channel: Channel, *, by: Employee) -> Channel:
    """Take the channel out of Settings: it is disabled for good, its conversations and contacts stay."""
    return _set_state(channel, by=by, action="channel.removed", disabled=True, removed=True)


def mark_channel_broken(channel: Channel | int, *, reason: str) -> bool:
    """The provider refused the channel's credentials (a revoked token): mark it broken, once.

    The first call sets ``broken_at`` and ``broken_reason`` (compare-and-swap: a poller that
    meets the refusal again and again, or several workers at once, mark it once), writes one
    ``channel.broken`` audit entry and, after commit, tells the company's channel managers: a
    notice on their open inboxes and an e-mail. True if this call marked it. Saving the channel
    with working credentials (``update_channel``) clears it. ``reason`` is stored as given:
    pass a ``gettext_noop`` text (pages translate it when they show it) or the provider's words.
    """
    channel_id = channel.pk if isinstance(channel, Channel) else channel
    reason = " ".join(str(reason or "").split())[:REASON_LIMIT] or gettext_noop("The provider refused the credentials.")
    with transaction.atomic(durable=True):
        marked = Channel.objects.filter(pk=channel_id, broken_at__isnull=True).update(
            broken_at=timezone.now(), broken_reason=reason
        )
        if not marked:
            return False
        channel = Channel.objects.get(pk=channel_id)
        audit.record(
            "channel.broken",
            company=channel.company_id,
            actor=None,
            actor_name=str(_adapter(channel.kind).label),
            obj=channel,
            after={"reason": reason},
        )
        transaction.on_commit(partial(_tell_channel_managers, channel.pk))
    return True


def channel_managers(company_id: int) -> list[Employee]:
    """The company's active employees who may manage channels: whom a broken channel concerns."""
    employees = Employee.objects.filter(company_id=company_id, is_active=True).select_related("role", "user")
    return [employee for employee in employees if employee.can(Perm.MANAGE_CHANNELS)]


def _tell_channel_managers(channel_id: int) -> None:
    from helpdesk.realtime import notices

    channel = Channel.objects.get(pk=channel_id)
    managers = channel_managers(channel.company_id)
    notice = {
        "type": "channel.broken",
        "channel_id": channel.pk,
        "channel_name": channel.name,
        "reason": _(channel.broken_reason),
        "at": channel.broken_at.isoformat() if channel.broken_at else None,
        "url": reverse("web:channel", args=[channel.pk]),
    }
    try:
        notices.send_all([(notices.personal_group(e.pk), {"type": "inbox.notice", "notice": notice}) for e in managers])
    except Exception:  # Redis away for a moment: Settings and the inbox's banner still show it
        log.exception("could not tell the inboxes that channel %s is broken", channel.pk)
    recipients = sorted({e.user.email for e in managers if e.user.email})
    if not recipients:
        return
    try:
        send_mail(
            subject=_("Smartchat: the channel %(name)s stopped working") % {"name": channel.name},
            message=_(
                "The channel %(name)s stopped working: %(reason)s\n\n"
                "Messages that arrive meanwhile are kept where the provider lets us; replies fail "
                "and can be retried once it works again. Enter working credentials on the channel's "
                "page in Settings → Channels and save it."
            )
            % {"name": channel.name, "reason": _(channel.broken_reason)},
            from_email=None,
            recipient_list=recipients,
        )
    except Exception:  # the mail server is away: Settings and the inbox still show it
        log.exception("could not e-mail that channel %s is broken", channel.pk)
