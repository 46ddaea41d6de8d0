"""Channel adapters: what core code may ask of a channel kind without knowing which kind it is.

Every channel is a package ``integrations/<kind>/`` of one shape (``inbound``, ``outbound``,
``setup`` and its tests) whose AppConfig registers one ``Adapter`` here when Django starts.
Core code (actions, fan-out, pages, the API) asks the registry, ``adapter_for(kind)``, and
never compares a channel's kind itself. The registry lives in the conversations layer because
the writer needs it (does a reply leave through a ``Delivery`` row?) and may not import an
integration: integrations reach down to register, nothing reaches up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django import forms

if TYPE_CHECKING:
    from django.utils.functional import Promise

    from .models import Channel, Conversation


class DeliveryError(Exception):
    """A send that failed: ``permanent`` (never retry: bot blocked, chat not found) or retryable.

    ``retry_after``: seconds the provider asked us to wait (Telegram's 429, VK's rate limit);
    ``None`` lets the sender's backoff choose.

    ``outcome_unknown``: the request may have reached the provider and taken effect, but no
    answer came (a read timeout, a connection lost after the request went out). For an adapter
    without ``idempotent_sends`` the delivery then becomes ``unknown`` and waits for a person,
    as an interrupted send does; an idempotent adapter's send is simply retried (the provider
    drops the repeat). A failure that certainly sent nothing (no connection, an error answer)
    leaves it ``False``.
    """

    def __init__(
        self, message: str, *, permanent: bool, retry_after: float | None = None, outcome_unknown: bool = False
    ):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after
        self.outcome_unknown = outcome_unknown


class FetchError(Exception):
    """A customer's file the provider could not give us: ``permanent`` (gone, refused) or not
    (unreachable, rate-limited: the worker tries again). ``too_large``: the provider says, or
    the download proved, that it is over the size limit (never read past the limit)."""

    def __init__(self, message: str, *, permanent: bool, too_large: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent or too_large
        self.too_large = too_large
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchedFile:
    """A file downloaded from the provider: its bytes (at most the size limit), and the name
    the provider gives it if the inbound description had none."""

    data: bytes
    name: str = ""


class SetupError(Exception):
    """The credentials or settings a channel was given don't work; ``field`` names the culprit."""

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class ChannelLink:
    """A link a customer follows to start a chat (Telegram's ``t.me/<bot>?start=<source>``).

    ``source`` is what the channel records on the new contact; the channel's page shows the
    link with its QR code (PNG and SVG downloads).
    """

    source: str
    url: str


class ChannelSetup:
    """How Settings and the API set up one kind (``integrations/<kind>/setup.py`` subclasses it).

    ``form``: the kind's own settings as a Django form, its secrets among them (the fields the
    adapter names in ``secret_fields``); the page shows it and the API validates JSON with it.
    Name, team and greeting are every channel's and not part of it.
    """

    form: type[forms.Form] = forms.Form

    def check_credentials(self, values: dict[str, Any]) -> dict[str, Any]:
        """Ask the provider whether the (cleaned) credentials work; raise ``SetupError`` if not.

        Returns plain settings learned on the way (the bot's username), saved with the channel.
        Called before anything is saved, outside any transaction (it talks to the network).
        """
        return {}

    def provider_url(self, channel: Channel, *, base_url: str) -> str | None:
        """The address to give the provider (Telegram's webhook, VK's Callback API), if any."""
        return None

    def after_save(self, channel: Channel) -> None:
        """Tell the provider about the saved channel (Telegram's setWebhook), after commit.

        Called by the channel writers after a channel is added, changed, disabled, enabled or
        removed, outside any transaction. It must not raise: the channel is saved already.
        """

    def embed_code(self, channel: Channel, *, base_url: str) -> str:
        """Code the company pastes into its own website (the widget's script tag), if any."""
        return ""

    def links(self, channel: Channel) -> list[ChannelLink]:
        """The channel's default links to start a chat (Telegram's deep link); none if it has none.

        A kind that gives links also makes one for any source the admin types, see ``link``.
        """
        return []

    def link(self, channel: Channel, source: str) -> ChannelLink | None:
        """The link for ``source``; ``None`` if the channel has no links.

        Raises ``SetupError(field="start")`` with a message for the admin if the provider does
        not allow this source.
        """
        return None


@dataclass
class Adapter:
    """One channel kind, as core code sees it. Subclass per kind and override what applies."""

    kind: str
    label: Promise | str
    # Customer-bound messages leave through a Delivery row that the worker sends (an outside
    # API: Telegram, VK, e-mail), rather than being pushed to live sockets (the widget).
    delivers: bool = False
    # Settings keys that are secrets: encrypted at rest, masked once saved, never logged.
    secret_fields: tuple[str, ...] = field(default=())
    # Customers meet it on the company's own website, put there by a script snippet: the
    # channel's page shows the snippet, and the demo website can show the channel.
    website_snippet: bool = False
    # The settings form, the credential check and the provider URL (see ChannelSetup).
    setup: ChannelSetup = field(default_factory=ChannelSetup)
    # The provider drops a repeated send that carries the same key (VK's random_id): a send
    # whose outcome is unknown (its worker died, or no answer came: ``outcome_unknown``) may
    # then be repeated; otherwise a person decides. The key is ``delivery.idempotency_key``, the same for every attempt.
    idempotent_sends: bool = False
    # The satisfaction survey (docs/csat.md) is shown by the channel's own client, inline (the
    # widget: ``socket_sends`` gets ``conversation.resolved`` with ``survey``). Otherwise it is
    # sent as an automatic text message and a lone digit from 1 to 5 answers it.
    inline_survey: bool = False

    # --- outbound, live ---------------------------------------------------------------------
    def socket_sends(self, event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """Channel-layer messages for customer-side sockets caused by a committed event."""
        return []

    def typing_sends(self, conversation: Conversation, *, name: str, typing: bool) -> list[tuple[str, dict[str, Any]]]:
        """An agent typing, for channels that can show it; not stored, not an event."""
        return []

    # --- outbound, through the worker -------------------------------------------------------
    def send(self, delivery: Any) -> str:
        """Send one Delivery; return the provider's message id or raise ``DeliveryError``.

        Called outside any transaction, with ``delivery.message`` and ``delivery.channel``
        loaded. An idempotent adapter passes ``delivery.idempotency_key`` to its provider.
        The message's files are ``delivery.message.attachments`` with status ready (read them
        with ``attachment.file.open("rb")``; ``is_image`` says whether to send as a photo).
        """
        raise NotImplementedError(f"{self.kind} does not deliver through the worker")

    def fetch_file(self, channel: Channel, source: dict[str, Any], *, max_bytes: int) -> FetchedFile:
        """Download one file a customer sent, as ``inbound`` described it (``Attachment.source``:
        the ``InboundAttachment``'s ``file_id``, ``url``, ``kind``, ``name``, ``size``).

        Called by the worker, outside any transaction. Never reads more than ``max_bytes``: a
        larger file raises ``FetchError(too_large=True)``. Failures raise ``FetchError``.
        """
        raise FetchError(f"{self.kind} does not fetch files", permanent=True)


_registry: dict[str, Adapter] = {}


def register(adapter: Adapter) -> Adapter:
    """Called once per kind from its AppConfig.ready(); registering a kind twice is a bug."""
    if adapter.kind in _registry and _registry[adapter.kind] is not adapter:
        raise RuntimeError(f"channel kind {adapter.kind!r} is registered twice")
    _registry[adapter.kind] = adapter
    return adapter


def adapter_for(kind: str) -> Adapter:
    try:
        return _registry[kind]
    except KeyError:
        raise LookupError(f"no adapter registered for channel kind {kind!r}") from None


def adapters() -> list[Adapter]:
    """Every registered kind, in registration order (the order Settings offers them)."""
    return list(_registry.values())
