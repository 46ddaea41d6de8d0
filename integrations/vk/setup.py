"""A VK community's settings: its id, an access token, and Long Poll or the Callback API.

The token is checked with ``groups.getById`` before anything is saved: it must be the token
of the community named by ``group_id``.
"""

from __future__ import annotations

from typing import Any

import requests
import vk_api
from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk.conversations.adapters import ChannelSetup, SetupError
from helpdesk.conversations.models import Channel

from .client import vk_session

MODES = [
    ("longpoll", gettext_lazy("Bots Long Poll: the worker asks VK for new messages")),
    ("callback", gettext_lazy("Callback API: VK sends new messages to this server")),
]
CALLBACK_PATH = "/hooks/vk/{public_key}/"
AUTH_FAILED, BAD_PARAMETER, ACCESS_DENIED = 5, 100, 15


class VkSettingsForm(forms.Form):
    group_id = forms.IntegerField(
        label=gettext_lazy("Community id"),
        help_text=gettext_lazy("The number in the community's address, club123456 → 123456."),
        min_value=1,
        max_value=2**53,
    )
    access_token = forms.CharField(
        label=gettext_lazy("Access token"),
        help_text=gettext_lazy("Community settings → API usage → Access tokens; allow messages."),
        max_length=400,
    )
    mode = forms.ChoiceField(label=gettext_lazy("How messages arrive"), choices=MODES, initial="longpoll")
    secret = forms.CharField(
        label=gettext_lazy("Secret key"),
        help_text=gettext_lazy("Callback API only: the secret key set in the community's Callback API settings."),
        max_length=50,
        required=False,
    )
    confirmation = forms.CharField(
        label=gettext_lazy("Confirmation code"),
        help_text=gettext_lazy("Callback API only: the string the server must return, shown in the same settings."),
        max_length=50,
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("mode") == "callback":
            for name in ("secret", "confirmation"):
                if not data.get(name):
                    self.add_error(name, _("The Callback API needs this."))
        return data


def _group(response: Any) -> dict[str, Any] | None:
    # API 5.199 answers {"groups": [...]}; older versions a bare list.
    groups = response.get("groups", []) if isinstance(response, dict) else response
    return groups[0] if groups else None


class VkSetup(ChannelSetup):
    form = VkSettingsForm

    def check_credentials(self, values: dict[str, Any]) -> dict[str, Any]:
        try:
            # No group_id: with a community's token VK answers with that community, so the
            # answer says whose token it is.
            response = vk_session(values["access_token"]).method("groups.getById")
        except vk_api.exceptions.ApiError as exc:
            if exc.code in (AUTH_FAILED, ACCESS_DENIED):
                raise SetupError(_("VK did not accept this access token."), field="access_token") from None
            if exc.code == BAD_PARAMETER:
                raise SetupError(_("VK has no community with this id."), field="group_id") from None
            reason = str(exc.error.get("error_msg", ""))[:200]
            raise SetupError(_("VK refused: %(reason)s") % {"reason": reason}) from None
        except (vk_api.exceptions.ApiHttpError, requests.RequestException, ValueError):
            raise SetupError(_("VK could not be reached. Try again in a minute.")) from None
        group = _group(response)
        if not group or group.get("id") != values["group_id"]:
            raise SetupError(_("This access token belongs to another community."), field="access_token")
        return {"group_name": str(group.get("name", ""))[:200]}

    def provider_url(self, channel: Channel, *, base_url: str) -> str | None:
        if channel.settings.get("mode") != "callback":
            return None
        return base_url + CALLBACK_PATH.format(public_key=channel.public_key)
