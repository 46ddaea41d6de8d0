"""Channels in Settings and the API: adding each kind, credentials checked against the fake
providers, encrypted at rest, masked, never logged or audited; disable, enable, remove; rotation."""

from __future__ import annotations

import io
import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from helpdesk.conversations import secrets
from helpdesk.conversations.models import Channel, Conversation
from helpdesk.events.models import AuditEntry, Event
from tests.conftest import login
from tests.fakes.telegram import fake_telegram as fake_telegram
from tests.fakes.vk import vk_fake as vk_fake

TOKEN = "123456789:AAEhBOweik9ai2o4sbVX-wQzSOMESECRETTAIL"
OTHER_TOKEN = "123456789:AAEhBOweik9ai2o4sbVX-wQzANOTHERSECRETX"
VK_TOKEN = "vk1.a.community-token-with-a-long-secret-tail-0042"
CHANNELS = "/api/v1/channels/"


@pytest.fixture
def telegram(fake_telegram, settings):
    settings.TELEGRAM_API_URL = fake_telegram.url
    fake_telegram.add_bot(TOKEN, username="acme_support_bot")
    fake_telegram.add_bot(OTHER_TOKEN, username="acme_other_bot")
    return fake_telegram


@pytest.fixture
def vk(vk_fake, settings):
    settings.VK_API_URL = vk_fake.api_url
    vk_fake.add_group(4242, VK_TOKEN, name="Acme community")
    return vk_fake


def raw_channel_rows() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT CAST(settings AS TEXT), secrets FROM conversations_channel")
        return repr(cursor.fetchall())


def audit_text() -> str:
    return repr(list(AuditEntry.objects.values_list("before", "after")))


def events_text() -> str:
    return repr(list(Event.objects.values_list("payload", flat=True)))


def test_telegram_through_the_api_is_checked_encrypted_masked_and_never_logged(cast, client, telegram, caplog):
    caplog.set_level(logging.DEBUG)
    login(client, cast.alice)
    body = {"kind": "telegram", "name": "Bot", "team": cast.support.pk, "bot_token": TOKEN, "mode": "webhook"}
    response = client.post(CHANNELS, body, content_type="application/json")
    assert response.status_code == 201, response.content
    data = response.json()
    channel = Channel.objects.get(pk=data["id"])
    assert (data["kind"], data["team"], data["enabled"]) == ("telegram", cast.support.pk, True)
    assert data["credentials"] == {"bot_token": "••••TAIL"}
    assert data["settings"]["bot_username"] == "acme_support_bot"
    assert data["provider_url"] == f"http://testserver/hooks/telegram/{channel.public_key}/"
    assert telegram.calls and telegram.calls[-1].method == "getMe"
    secret_part = TOKEN.split(":")[1]
    for where in (response.content.decode(), raw_channel_rows(), audit_text(), events_text(), caplog.text):
        assert secret_part not in where
    assert channel.secret_values() == {"bot_token": TOKEN}
    assert AuditEntry.objects.get(action="channel.added").after["credentials_set"] == ["bot_token"]
    detail = client.get(f"{CHANNELS}{channel.pk}/").json()
    assert secret_part not in repr(detail) and detail["credentials"] == {"bot_token": "••••TAIL"}


def test_a_bad_telegram_token_is_a_clear_400_and_saves_nothing(cast, client, telegram):
    login(client, cast.alice)
    before = Channel.objects.count()
    body = {"kind": "telegram", "name": "Bot", "bot_token": "999:AAEunknownTokenThatTelegramRefuses", "mode": "polling"}
    response = client.post(CHANNELS, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_credentials"
    assert "did not accept" in response.json()["error"]["message"]
    assert Channel.objects.count() == before
    assert not AuditEntry.objects.filter(action="channel.added").exists()


def test_a_token_that_is_not_a_token_never_reaches_telegram(cast, client, telegram):
    login(client, cast.alice)
    body = {"kind": "telegram", "name": "Bot", "bot_token": "hello", "mode": "polling"}
    response = client.post(CHANNELS, body, content_type="application/json")
    assert response.status_code == 400
    assert "bot_token" in response.json()["error"]["fields"]
    assert not telegram.calls


def test_telegram_unreachable_is_a_400_that_says_so(cast, client):
    login(client, cast.alice)  # the autouse fixture points TELEGRAM_API_URL at a closed port
    body = {"kind": "telegram", "name": "Bot", "bot_token": TOKEN, "mode": "polling"}
    response = client.post(CHANNELS, body, content_type="application/json")
    assert response.status_code == 400
    assert "could not be reached" in response.json()["error"]["message"]


def test_vk_callback_through_the_api(cast, client, vk, caplog):
    caplog.set_level(logging.DEBUG)
    login(client, cast.alice)
    body = {
        "kind": "vk",
        "name": "Community",
        "group_id": 4242,
        "access_token": VK_TOKEN,
        "mode": "callback",
        "secret": "callback-secret-value-123",
        "confirmation": "a1b2c3d4",
    }
    response = client.post(CHANNELS, body, content_type="application/json")
    assert response.status_code == 201, response.content
    data = response.json()
    channel = Channel.objects.get(pk=data["id"])
    assert data["provider_url"] == f"http://testserver/hooks/vk/{channel.public_key}/"
    assert data["credentials"] == {"access_token": "••••0042", "secret": "••••-123"}
    assert data["settings"]["confirmation"] == "a1b2c3d4" and data["settings"]["group_name"] == "Acme community"
    for where in (response.content.decode(), raw_channel_rows(), audit_text(), caplog.text):
        assert VK_TOKEN not in where and "callback-secret-value" not in where
    assert vk.calls_of("groups.getById")


def test_vk_refuses_a_wrong_token_a_foreign_group_and_a_callback_without_its_secret(cast, client, vk):
    login(client, cast.alice)
    base = {"kind": "vk", "name": "Community", "group_id": 4242, "access_token": VK_TOKEN, "mode": "longpoll"}
    wrong = client.post(CHANNELS, {**base, "access_token": "nope"}, content_type="application/json")
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "bad_credentials")
    foreign = client.post(CHANNELS, {**base, "group_id": 777}, content_type="application/json")
    assert (foreign.status_code, foreign.json()["error"]["code"]) == (400, "bad_credentials")
    callback = client.post(CHANNELS, {**base, "mode": "callback"}, content_type="application/json")
    assert callback.status_code == 400
    assert set(callback.json()["error"]["fields"]) == {"secret", "confirmation"}
    assert not Channel.objects.filter(kind="vk").exists()


def test_patch_keeps_a_credential_left_out_and_audits_a_changed_one_without_its_value(cast, client, telegram):
    login(client, cast.alice)
    body = {"kind": "telegram", "name": "Bot", "bot_token": TOKEN, "mode": "polling"}
    channel_id = client.post(CHANNELS, body, content_type="application/json").json()["id"]
    url = f"{CHANNELS}{channel_id}/"
    renamed = client.patch(url, {"name": "Support bot", "mode": "webhook"}, content_type="application/json")
    assert renamed.status_code == 200, renamed.content
    assert Channel.objects.get(pk=channel_id).secret_values() == {"bot_token": TOKEN}
    assert renamed.json()["provider_url"].endswith(
        "/hooks/telegram/" + Channel.objects.get(pk=channel_id).public_key + "/"
    )
    changed = client.patch(url, {"bot_token": OTHER_TOKEN}, content_type="application/json")
    assert changed.status_code == 200
    entry = AuditEntry.objects.filter(action="channel.updated").latest("pk")
    assert entry.after["credentials_changed"] == ["bot_token"]
    assert "SECRET" not in audit_text()
    refused = client.patch(url, {"bot_token": "1:AAEaTokenTelegramDoesNotKnowAtAll"}, content_type="application/json")
    assert refused.status_code == 400
    assert Channel.objects.get(pk=channel_id).secret_values() == {"bot_token": OTHER_TOKEN}


def test_the_api_is_for_channel_managers_and_foreign_ids_are_404(cast, client):
    login(client, cast.bob)
    assert client.get(CHANNELS).status_code == 403
    assert client.get(f"{CHANNELS}{cast.widget.pk}/").status_code == 403
    login(client, cast.carol)
    assert client.get(f"{CHANNELS}{cast.widget.pk}/").status_code == 404
    patch = client.patch(f"{CHANNELS}{cast.widget.pk}/", {"name": "Mine"}, content_type="application/json")
    assert patch.status_code == 404
    assert [row["id"] for row in client.get(CHANNELS).json()["results"]] == [cast.globex_widget.pk]
    foreign_team = {"kind": "widget", "name": "Site", "team": cast.sales.pk}
    assert client.post(CHANNELS, foreign_team, content_type="application/json").status_code == 404


def test_a_new_company_adds_a_widget_on_the_settings_page(cast, client):
    login(client, cast.alice)
    page = client.get(reverse("web:channels")).content.decode()
    for kind in ("widget", "telegram", "vk"):
        assert reverse("web:channel_add", args=[kind]) in page
    response = client.post(
        reverse("web:channel_add", args=["widget"]),
        {"name": "Shop", "team": cast.support.pk, "greeting": "Hi there!", "allowed_origins": "https://shop.example"},
    )
    channel = Channel.objects.get(name="Shop")
    assert response.status_code == 302 and response["Location"] == reverse("web:channel", args=[channel.pk])
    assert (channel.kind, channel.team, channel.company) == ("widget", cast.support, cast.acme)
    assert channel.settings["allowed_origins"] == ["https://shop.example"]
    assert channel.settings["greeting"] == "Hi there!"
    detail = client.get(reverse("web:channel", args=[channel.pk])).content.decode()
    assert channel.public_key in detail  # the snippet to paste


def test_the_settings_page_adds_telegram_masks_the_token_and_keeps_it_when_left_empty(cast, client, telegram):
    login(client, cast.alice)
    add = client.post(
        reverse("web:channel_add", args=["telegram"]), {"name": "Bot", "bot_token": TOKEN, "mode": "polling"}
    )
    channel = Channel.objects.get(kind="telegram")
    assert add.status_code == 302
    page = client.get(reverse("web:channel", args=[channel.pk])).content.decode()
    assert "••••TAIL" in page and TOKEN not in page and TOKEN.split(":")[1] not in page
    edit = client.post(
        reverse("web:channel", args=[channel.pk]), {"name": "Renamed", "bot_token": "", "mode": "webhook"}
    )
    assert edit.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.settings["mode"], channel.secret_values()) == (
        "Renamed",
        "webhook",
        {"bot_token": TOKEN},
    )
    page = client.get(reverse("web:channel", args=[channel.pk])).content.decode()
    assert f"/hooks/telegram/{channel.public_key}/" in page


def test_a_refused_token_on_the_page_shows_why_and_saves_nothing(cast, client, telegram):
    login(client, cast.alice)
    response = client.post(
        reverse("web:channel_add", args=["telegram"]),
        {"name": "Bot", "bot_token": "999:AAEunknownTokenThatTelegramRefuses", "mode": "polling"},
    )
    assert response.status_code == 200
    assert "Telegram did not accept this bot token." in response.content.decode()
    assert "AAEunknownTokenThatTelegramRefuses" not in response.content.decode()  # not rendered back
    assert not Channel.objects.filter(kind="telegram").exists()


def test_disable_enable_and_remove_keep_the_history(cast, client):
    login(client, cast.alice)
    state = reverse("web:channel_state", args=[cast.widget.pk])
    client.post(state, {"action": "disable"})
    cast.widget.refresh_from_db()
    assert not cast.widget.enabled
    assert "disabled" in client.get(reverse("web:channels")).content.decode()
    client.post(state, {"action": "enable"})
    cast.widget.refresh_from_db()
    assert cast.widget.enabled
    assert client.post(state, {"action": "remove"})["Location"] == reverse("web:channels")
    cast.widget.refresh_from_db()
    assert cast.widget.removed_at and not cast.widget.enabled
    assert Conversation.objects.filter(channel=cast.widget).count() == 1  # history kept
    assert "Acme site" not in client.get(reverse("web:channels")).content.decode()
    assert client.get(reverse("web:channel", args=[cast.widget.pk])).status_code == 404
    assert [e.action for e in AuditEntry.objects.filter(object_id=cast.widget.pk).order_by("pk")] == [
        "channel.disabled",
        "channel.enabled",
        "channel.removed",
    ]


def test_the_api_disables_and_enables(cast, client):
    login(client, cast.alice)
    url = f"{CHANNELS}{cast.widget.pk}/"
    assert client.patch(url, {"enabled": False}, content_type="application/json").json()["enabled"] is False
    assert client.patch(url, {"enabled": True}, content_type="application/json").json()["enabled"] is True


def test_rotation_re_encrypts_with_the_new_key_so_the_old_one_can_go(cast, client, telegram, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CHANNEL_SECRET_KEYS = [old]
    login(client, cast.alice)
    body = {"kind": "telegram", "name": "Bot", "bot_token": TOKEN, "mode": "polling"}
    channel = Channel.objects.get(pk=client.post(CHANNELS, body, content_type="application/json").json()["id"])
    settings.CHANNEL_SECRET_KEYS = [new, old]
    out = io.StringIO()
    call_command("rotate_channel_secrets", stdout=out)
    assert "1 channel(s)" in out.getvalue()
    settings.CHANNEL_SECRET_KEYS = [new]
    channel.refresh_from_db()
    assert channel.secret_values() == {"bot_token": TOKEN}
    settings.CHANNEL_SECRET_KEYS = [old]
    with pytest.raises(secrets.SecretsUnreadable):
        channel.secret_values()
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("rotate_channel_secrets")


def test_the_default_key_is_derived_from_secret_key_and_the_old_one_can_be_listed(settings):
    settings.CHANNEL_SECRET_KEYS = []
    old_secret_key = settings.SECRET_KEY
    stored = secrets.encrypt({"bot_token": TOKEN})
    assert secrets.decrypt(stored) == {"bot_token": TOKEN} and TOKEN not in stored
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789-abcdefghijklmnop"
    with pytest.raises(secrets.SecretsUnreadable):
        secrets.decrypt(stored)
    settings.CHANNEL_SECRET_KEYS = [Fernet.generate_key().decode(), secrets.derived_key(old_secret_key)]
    assert secrets.decrypt(stored) == {"bot_token": TOKEN}


def test_a_malformed_channel_key_stops_start_up(monkeypatch):
    from smartchat import env

    monkeypatch.setenv("CHANNEL_SECRET_KEYS", f"{Fernet.generate_key().decode()}, not-a-key")
    with pytest.raises(env.ConfigError, match="key 2 is not a Fernet key"):
        env.fernet_keys("CHANNEL_SECRET_KEYS")
