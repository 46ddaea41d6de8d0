"""A Telegram channel's page shows its t.me deep links with QR codes (PNG and SVG downloads).

The links come from the adapter (``ChannelSetup.links``/``link``); the page and the QR view
never ask which kind a channel is. ``/start <source>`` is recorded on the contact by
integrations/telegram/inbound.py (tests/test_telegram.py).
"""

from __future__ import annotations

import io
from xml.etree import ElementTree

import pytest
import segno
from django.urls import reverse

from helpdesk.conversations.models import Channel
from tests.conftest import login

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def bot(cast) -> Channel:
    return Channel.objects.create(
        company=cast.acme,
        kind="telegram",
        name="Acme bot",
        settings={"mode": "polling", "bot_username": "acme_help_bot"},
    )


def qr_url(channel: Channel, fmt: str, kind: str = "telegram") -> str:
    return reverse("web:channel_link_qr", kwargs={"channel_id": channel.pk, "kind": kind, "fmt": fmt})


def same_qr(text: str, fmt: str) -> bytes:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind=fmt, scale=8, border=4)
    return out.getvalue()


def test_the_page_shows_the_default_link_and_its_qr_downloads(cast, client, bot):
    login(client, cast.alice)
    page = client.get(reverse("web:channel", args=[bot.pk])).content.decode()
    assert "https://t.me/acme_help_bot?start=site" in page
    assert f'src="{qr_url(bot, "png")}?start=site"' in page
    assert f'href="{qr_url(bot, "svg")}?start=site"' in page


def test_a_typed_source_makes_a_link_and_a_bad_one_is_refused_with_a_message(cast, client, bot):
    login(client, cast.alice)
    page = client.get(reverse("web:channel", args=[bot.pk]), {"start": "spring-flyer_2"}).content.decode()
    assert "https://t.me/acme_help_bot?start=spring-flyer_2" in page
    assert f"{qr_url(bot, 'png')}?start=spring-flyer_2" in page
    page = client.get(reverse("web:channel", args=[bot.pk]), {"start": "no spaces!"}).content.decode()
    assert "Latin letters, digits, _ and -" in page
    assert "acme_help_bot?start=no" not in page
    assert page.count('data-testid="channel-link"') == 1  # only the default one


def test_the_widget_has_no_links(cast, client):
    login(client, cast.alice)
    page = client.get(reverse("web:channel", args=[cast.widget.pk])).content.decode()
    assert 'data-testid="channel-links"' not in page
    assert client.get(qr_url(cast.widget, "png", kind="widget")).status_code == 404


def test_png_download_encodes_the_deep_link(cast, client, bot):
    login(client, cast.alice)
    response = client.get(qr_url(bot, "png"), {"start": "instagram"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == f'attachment; filename="telegram-{bot.pk}-instagram-qr.png"'
    assert response.content.startswith(PNG_SIGNATURE)
    assert response.content == same_qr("https://t.me/acme_help_bot?start=instagram", "png")


def test_svg_download_encodes_the_deep_link(cast, client, bot):
    login(client, cast.alice)
    response = client.get(qr_url(bot, "svg"), {"start": "instagram"})
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Content-Disposition"] == f'attachment; filename="telegram-{bot.pk}-instagram-qr.svg"'
    assert ElementTree.fromstring(response.content).tag == "{http://www.w3.org/2000/svg}svg"
    assert response.content == same_qr("https://t.me/acme_help_bot?start=instagram", "svg")


def test_without_start_the_qr_is_the_default_link(cast, client, bot):
    login(client, cast.alice)
    assert client.get(qr_url(bot, "png")).content == same_qr("https://t.me/acme_help_bot?start=site", "png")


@pytest.mark.parametrize("source", ["", "a" * 65, "has space", "ünïcode", "a/b", "a?b=c"])
def test_a_payload_telegram_would_refuse_is_a_clear_400(cast, client, bot, source):
    login(client, cast.alice)
    response = client.get(qr_url(bot, "png"), {"start": source})
    assert response.status_code == 400
    assert "1 to 64 characters" in response.content.decode()


def test_a_64_character_payload_is_fine(cast, client, bot):
    login(client, cast.alice)
    assert client.get(qr_url(bot, "svg"), {"start": "a" * 64}).status_code == 200


def test_another_companys_channel_is_404(cast, client, bot):
    login(client, cast.carol)
    assert client.get(qr_url(bot, "png")).status_code == 404
    assert client.get(reverse("web:channel", args=[bot.pk])).status_code == 404


def test_a_wrong_kind_or_format_in_the_address_is_404(cast, client, bot):
    login(client, cast.alice)
    assert client.get(qr_url(bot, "png", kind="vk")).status_code == 404
    assert client.get(qr_url(bot, "gif")).status_code == 404


def test_an_agent_without_manage_channels_gets_403(cast, client, bot):
    login(client, cast.bob)
    assert client.get(qr_url(bot, "png")).status_code == 403
    assert client.get(qr_url(bot, "svg"), {"start": "instagram"}).status_code == 403


def test_a_bot_without_a_known_username_has_no_links(cast, client, bot):
    bot.settings = {"mode": "polling"}
    bot.save()
    login(client, cast.alice)
    assert 'data-testid="channel-links"' not in client.get(reverse("web:channel", args=[bot.pk])).content.decode()
    assert client.get(qr_url(bot, "png")).status_code == 404
