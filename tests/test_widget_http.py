"""The widget's session endpoint, called cross-origin from customers' sites."""

from __future__ import annotations

import json

import pytest
from django.core import signing
from django.test import override_settings

from helpdesk.conversations import actions
from helpdesk.conversations.models import Contact, Message
from integrations.widget.visitors import SALT, issue_token
from tests.conftest import ACME_ORIGIN


def start(client, channel, body=None, origin=ACME_ORIGIN, raw=None):
    headers = {"origin": origin} if origin else {}
    data = raw if raw is not None else json.dumps(body or {})
    return client.post(
        f"/widget/v1/{channel.public_key}/session", data, content_type="application/json", headers=headers
    )


def test_a_new_visitor_gets_a_token_presence_and_settings_with_cors(client, cast):
    response = start(client, cast.widget)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN
    data = response.json()
    assert data["token"] and data["messages"] == [] and data["online"] is False
    assert data["settings"]["title"] == "Acme"
    assert data["settings"]["max_chars"] == 5000  # the widget refuses longer messages before sending
    assert not Contact.objects.filter(company=cast.acme).exclude(pk=cast.conversation.contact_id).exists()


def test_a_returning_visitor_gets_their_history_without_notes(client, cast):
    token, _ = issue_token(cast.widget, "visitor-1")
    actions.add_note(cast.conversation, by=cast.bob, body="secret note")
    actions.post_reply(cast.conversation, by=cast.bob, body="Hi there")
    data = start(client, cast.widget, {"token": token}).json()
    assert [(m["from"], m["body"]) for m in data["messages"]] == [
        ("visitor", "Hello, is my order shipped?"),
        ("agent", "Hi there"),
    ]
    assert data["messages"][1]["author_name"] == "Bob"
    assert "secret note" not in json.dumps(data)


def test_the_preflight_answers_for_allowed_origins(client, cast):
    response = client.options(f"/widget/v1/{cast.widget.public_key}/session", headers={"origin": ACME_ORIGIN})
    assert response.status_code == 204
    assert response["Access-Control-Allow-Methods"] == "POST, OPTIONS"


@pytest.mark.parametrize(("origin", "code"), [("https://evil.test", "origin_denied"), (None, "origin_missing")])
def test_other_origins_are_refused_without_cors(client, cast, origin, code):
    response = start(client, cast.widget, origin=origin)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == code
    assert "Access-Control-Allow-Origin" not in response


def test_an_unknown_channel_is_404(client, cast):
    response = client.post(
        "/widget/v1/nope/session", "{}", content_type="application/json", headers={"origin": ACME_ORIGIN}
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_channel"


def test_a_forged_token_is_401(client, cast):
    token, _ = issue_token(cast.widget, "visitor-1")
    response = start(client, cast.widget, {"token": token[:-3] + "abc"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_invalid"


def test_a_token_for_another_channel_is_401(client, cast):
    token, _ = issue_token(cast.globex_widget, "visitor-1")
    response = start(client, cast.widget, {"token": token})
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_invalid"


def test_a_token_signed_with_another_key_is_401(client, cast):
    token = signing.dumps({"c": cast.widget.pk, "v": "visitor-1"}, salt=SALT, key="someone-elses-key")
    assert start(client, cast.widget, {"token": token}).status_code == 401


@override_settings(WIDGET_TOKEN_MAX_AGE_DAYS=0)
def test_an_expired_token_is_401_with_its_own_code(client, cast):
    token, _ = issue_token(cast.widget, "visitor-1")
    response = start(client, cast.widget, {"token": token})
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_expired"
    # The widget may read this refusal: it starts a fresh session next.
    assert response["Access-Control-Allow-Origin"] == ACME_ORIGIN


@pytest.mark.parametrize(("raw", "status"), [("{not json", 400), ("[1, 2]", 400), ('{"token": 5}', 400)])
def test_malformed_bodies_are_400(client, cast, raw, status):
    assert start(client, cast.widget, raw=raw).status_code == status


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 4000,  # past what the standard parser survives (RecursionError)
        '{"a":' * 600 + "1" + "}" * 600,  # parses, but deeper than anything we accept
        '{"token": ' + "[" * 40 + "]" * 40 + "}",
    ],
    ids=["unparseable depth", "parseable depth", "a nested token"],
)
def test_deeply_nested_json_is_400(client, cast, raw):
    before = Contact.objects.count()
    response = start(client, cast.widget, raw=raw)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in ("bad_json", "bad_token")
    assert Contact.objects.count() == before


@pytest.mark.parametrize("token", ["abc\u0000def", "abc\ud800def", "\udfff", "a:b:c"])
def test_a_token_with_characters_no_token_has_is_401(client, cast, token):
    response = start(client, cast.widget, {"token": token})  # json.dumps escapes them: \u0000, \ud800
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_invalid"


@pytest.mark.parametrize("key", ["%00", "a%00b", "%ED%A0%80", "x" * 300])
def test_a_malformed_widget_key_is_404(client, cast, key):
    response = client.post(
        f"/widget/v1/{key}/session", "{}", content_type="application/json", headers={"origin": ACME_ORIGIN}
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_channel"


@pytest.mark.parametrize(
    "origin", ["https://shop.acme.test:99999", "https://shop.acme.test:port", "http://[::1", "\x7f"]
)
def test_a_malformed_origin_is_refused_like_a_missing_one(client, cast, origin):
    response = start(client, cast.widget, origin=origin)
    assert response.status_code == 403 and response.json()["error"]["code"] == "origin_missing"


def test_an_oversized_body_is_413_and_stores_nothing(client, cast):
    before = Message.objects.count()
    response = start(client, cast.widget, raw=json.dumps({"token": "x" * 10_000}))
    assert response.status_code == 413
    assert Message.objects.count() == before


def test_a_star_allows_any_origin(client, cast):
    assert start(client, cast.globex_widget, origin="https://anything.test").status_code == 200
