"""The website widget's settings: its title, colour and the websites it may appear on."""

from __future__ import annotations

from django import forms
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from helpdesk.conversations.adapters import ChannelSetup
from helpdesk.conversations.models import Channel

from .visitors import normalise_origin


class OriginsField(forms.Field):
    """Websites, one origin per line on the page, or a JSON list in the API."""

    widget = forms.Textarea(attrs={"rows": 4})
    many = True  # the API shows it as a list of strings

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value) -> list[str]:
        lines = value if isinstance(value, list | tuple) else str(value or "").splitlines()
        origins = []
        for line in lines:
            line = str(line).strip()
            if not line:
                continue
            if line == "*":
                origins.append("*")
                continue
            origin = normalise_origin(line)
            if not origin:
                raise forms.ValidationError(
                    _("%(line)s is not an origin like https://www.example.com.") % {"line": line[:200]}
                )
            origins.append(origin)
        return origins


class WidgetSettingsForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Widget title"), max_length=80, required=False)
    color = forms.RegexField(
        label=gettext_lazy("Brand colour"), regex=r"^#[0-9a-fA-F]{6}$", initial="#4f46e5", required=False
    )
    allowed_origins = OriginsField(
        label=gettext_lazy("Allowed websites"),
        help_text=gettext_lazy(
            "One origin per line, for example https://www.example.com. The widget works only there."
        ),
        required=False,
    )

    def clean_color(self) -> str:
        return self.cleaned_data["color"] or "#4f46e5"


class WidgetSetup(ChannelSetup):
    form = WidgetSettingsForm

    def embed_code(self, channel: Channel, *, base_url: str) -> str:
        src = base_url + static("widget/smartchat-widget.js")
        return f'<script src="{src}" data-channel="{channel.public_key}" async></script>'
