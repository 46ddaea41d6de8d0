"""Malformed and oversized input to the API: a clear 4xx in the API's JSON error shape, nothing stored."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import Employee, Team
from tests.conftest import PASSWORD, login
from tests.test_api_tokens import bearer

API = "/api/v1/"


@pytest.fixture
def key(cast) -> str:
    return admin_actions.create_api_token(by=cast.alice, name="input")[1]


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert {"code", "message"} <= set(error) <= {"code", "message", "fields"}
    if code:
        assert error["code"] == code
    return error


def long_email(length: int) -> str:
    domain = "@acme.test"
    return "x" * (length - len(domain)) + domain


# --- E-mail addresses longer than the username column ----------------------------------------------------


@pytest.mark.parametrize("length", [151, 254])
def test_an_employee_email_up_to_254_characters_is_accepted_and_can_sign_in(client, cast, key, length):
    email = long_email(length)
    response = client.post(
        f"{API}employees/",
        {"email": email, "name": "Long", "role_id": cast.bob.role_id},
        content_type="application/json",
        headers=bearer(key),
    )
    assert response.status_code == 201, response.content
    assert response.json()["email"] == email
    user = Employee.objects.get(pk=response.json()["id"]).user
    user.set_password(PASSWORD)
    user.save()
    signed_in = Client().post("/login/", {"username": email.upper(), "password": PASSWORD})
    assert signed_in.status_code == 302 and signed_in.url == "/inbox/"
    duplicate = client.post(
        f"{API}employees/",
        {"email": email, "name": "Again", "role_id": cast.bob.role_id},
        content_type="application/json",
        headers=bearer(key),
    )
    assert assert_error(duplicate, 400)["code"] == "duplicate_email"


def test_the_employee_form_takes_a_long_email_and_refuses_one_over_254(client, cast):
    login(client, cast.alice)
    form = {"name": "Long", "role": cast.bob.role_id, "capacity": 10}
    refused = client.post("/settings/employees/new/", {**form, "email": long_email(255)})
    assert refused.status_code == 200
    assert "at most 254 characters" in refused.content.decode()
    accepted = client.post("/settings/employees/new/", {**form, "email": long_email(200)})
    assert accepted.status_code == 302
    assert get_user_model().objects.filter(email=long_email(200)).exists()


# --- Bodies ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["[" * 1000 + "]" * 1000, '{"name": ' * 100 + "1" + "}" * 100])
def test_deeply_nested_json_is_a_400(client, cast, key, body, caplog):
    with caplog.at_level(logging.WARNING):
        response = client.post(f"{API}teams/", body, content_type="application/json", headers=bearer(key))
    assert_error(response, 400, "parse_error")
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is None
    assert Team.objects.filter(company=cast.acme).count() == 2


@pytest.mark.parametrize(
    "body", [b'{"name": "\xff"}', b'{"name": NaN}', b'{"name": "x"', b"\x00", b'{"name": Infinity}']
)
def test_bodies_that_are_not_strict_utf8_json_are_a_400(client, cast, key, body):
    response = client.post(f"{API}teams/", body, content_type="application/json", headers=bearer(key))
    assert_error(response, 400, "parse_error")


def test_a_body_over_the_limit_is_a_413_in_json(client, cast, key, settings, caplog):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    with caplog.at_level(logging.WARNING):
        response = client.post(
            f"{API}teams/", json.dumps({"name": "x" * 2000}), content_type="application/json", headers=bearer(key)
        )
    assert_error(response, 413, "too_large")
    assert all(record.exc_info is None for record in caplog.records) and len(caplog.records) == 1


def test_another_content_type_is_a_415(client, cast, key):
    response = client.post(
        f"{API}teams/", "name=Ops", content_type="application/x-www-form-urlencoded", headers=bearer(key)
    )
    assert_error(response, 415)
    assert not Team.objects.filter(name="Ops").exists()


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b"])
def test_nul_bytes_and_lone_surrogates_are_refused_everywhere(client, cast, key, text):
    body = json.dumps({"name": text})  # ensure_ascii: a lone surrogate travels as \\ud800
    assert_error(client.post(f"{API}teams/", body, content_type="application/json", headers=bearer(key)), 400)
    attributes = json.dumps({"attributes": {text: "x", "plan": text}})
    contact = cast.conversation.contact_id
    assert_error(
        client.patch(f"{API}contacts/{contact}/", attributes, content_type="application/json", headers=bearer(key)),
        400,
    )
    # In a URL a lone surrogate can only arrive as its (invalid) UTF-8 bytes, which Django turns
    # into U+FFFD: a harmless search. A NUL byte arrives as itself and is refused.
    quoted = text.encode("utf-8", "surrogatepass").hex("%").upper()
    for url in ["employees/?search=", "contacts/?search=", "search/?q=", "conversations/?view="]:
        response = client.get(f"{API}{url}%{quoted}", headers=bearer(key))
        if "\x00" in text or "view" in url:
            assert_error(response, 400)
        else:
            assert response.status_code == 200
    assert not Team.objects.filter(name__contains="a").exclude(name__in=["Sales"]).exists()


# --- Addresses ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("get", "conversations/abc/", 404),
        ("get", "conversations/1.5/messages/", 404),
        ("get", "no-such-thing/", 404),
        ("get", "/api/v2/conversations/", 404),
        ("put", "conversations/", 405),
        ("delete", "teams/", 405),
    ],
)
def test_unknown_addresses_and_methods_answer_the_json_error_shape(client, cast, key, method, url, status):
    path = url if url.startswith("/") else API + url
    assert_error(getattr(client, method)(path, headers=bearer(key)), status)


def test_pages_outside_the_api_keep_their_html_404(client, cast):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# --- Query strings -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["conversations/?status=", "conversations/counts?status=", "roles/?archived="])
def test_a_blank_choice_is_refused_rather_than_ignored(client, cast, key, url):
    assert_error(client.get(API + url, headers=bearer(key)), 400, "invalid")


def test_nested_field_errors_are_flat(client, cast, key):
    response = client.post(
        f"{API}teams/",
        {"name": "Ops", "member_ids": [1, "x", 2, "y"]},
        content_type="application/json",
        headers=bearer(key),
    )
    fields = assert_error(response, 400, "invalid")["fields"]
    assert set(fields) == {"member_ids.1", "member_ids.3"}
    assert all(isinstance(messages, list) and isinstance(messages[0], str) for messages in fields.values())


@pytest.mark.parametrize("value", ["30.0", "1e3", "0x1f"])
def test_an_id_filter_takes_digits_only(client, cast, key, value):
    assert_error(client.get(f"{API}conversations/", {"channel_id": value}, headers=bearer(key)), 400, "invalid")
