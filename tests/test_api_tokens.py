"""Personal API tokens: the bearer header, the tokens endpoints and the Settings → API tokens page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from helpdesk.accounts import actions as admin_actions
from helpdesk.accounts.models import ApiToken
from helpdesk.events.models import AuditEntry
from tests.conftest import login

API = "/api/v1/"
TOKENS = "/api/v1/tokens/"


def bearer(key: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"authorization": f"{scheme} {key}"}


def assert_401(response) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert set(response.json()["error"]) == {"code", "message"}


# --- The Authorization header -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "Token"])
def test_a_key_in_the_authorization_header_acts_as_its_employee(client, cast, scheme):
    _, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    response = client.get(f"{API}conversations/", {"view": "all"}, headers=bearer(key, scheme))
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [cast.conversation.pk]


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",  # no key
        "Bearer sc_abc_def extra",  # spaces
        "Bearer not-a-key",
        "Bearer sc_000000000000_wrong-secret",
        "Token sc_",
    ],
)
def test_a_malformed_or_unknown_key_is_a_401_with_a_challenge(client, cast, header):
    assert_401(client.get(f"{API}conversations/", headers={"authorization": header}))


def test_a_right_prefix_with_a_wrong_secret_is_refused(client, cast):
    token, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    assert_401(client.get(f"{API}conversations/", headers=bearer(f"sc_{token.prefix}_guessed")))
    assert client.get(f"{API}conversations/", headers=bearer(key)).status_code == 200


def test_a_revoked_key_is_a_401(client, cast):
    token, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    admin_actions.revoke_api_token(token, by=cast.bob)
    assert_401(client.get(f"{API}conversations/", headers=bearer(key)))


def test_a_deactivated_employees_key_is_a_401_and_works_again_after_reactivation(client, cast):
    _, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    admin_actions.deactivate_employee(cast.bob, by=cast.alice)
    assert_401(client.get(f"{API}conversations/", headers=bearer(key)))
    admin_actions.reactivate_employee(cast.bob, by=cast.alice)
    assert client.get(f"{API}conversations/", headers=bearer(key)).status_code == 200


def test_anonymous_requests_are_a_401_everywhere(client, cast):
    for url in ["conversations/", "employees/", "teams/", "roles/", "contacts/", "tokens/"]:
        assert_401(client.get(API + url))
    assert_401(client.post(f"{API}conversations/{cast.conversation.pk}/resolve"))


def test_another_authorization_scheme_is_left_to_the_session(client, cast):
    login(client, cast.bob)
    response = client.get(f"{API}conversations/", headers={"authorization": "Basic Ym9iOnNlY3JldA=="})
    assert response.status_code == 200


def test_using_a_key_records_when_it_was_last_used(client, cast):
    token, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    assert token.last_used_at is None
    client.get(f"{API}conversations/", headers=bearer(key))
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_key_needs_no_csrf_token_but_a_session_does(cast):
    _, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    strict = Client(enforce_csrf_checks=True)
    url = f"{API}conversations/{cast.conversation.pk}/notes"
    response = strict.post(url, {"body": "by key"}, content_type="application/json", headers=bearer(key))
    assert response.status_code == 201

    strict.force_login(cast.bob.user)
    response = strict.post(url, {"body": "by session"}, content_type="application/json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    strict.get(reverse("web:api-tokens"))  # any page sets the CSRF cookie
    csrf = strict.cookies["csrftoken"].value
    response = strict.post(url, {"body": "by session"}, content_type="application/json", headers={"x-csrftoken": csrf})
    assert response.status_code == 201


# --- The tokens endpoints -----------------------------------------------------------------------------------


def test_listing_own_tokens_never_shows_a_secret(client, cast):
    token, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    admin_actions.create_api_token(by=cast.erin, name="Erin's")
    login(client, cast.bob)
    response = client.get(TOKENS)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(row["id"], row["name"], row["prefix"], row["active"]) for row in rows] == [
        (token.pk, "CRM", token.prefix, True)
    ]
    assert key.split("_", 2)[2] not in response.content.decode()
    assert "secret_hash" not in rows[0] and "key" not in rows[0]


def test_creating_a_token_shows_the_key_once(client, cast):
    login(client, cast.bob)
    response = client.post(TOKENS, {"name": "Zapier"}, content_type="application/json")
    assert response.status_code == 201
    data = response.json()
    assert data["key"].startswith(f"sc_{data['prefix']}_") and data["active"] is True
    assert client.get(f"{TOKENS}{data['id']}/").json().get("key") is None
    client.logout()
    assert client.get(f"{API}employees/", headers=bearer(data["key"])).status_code == 200


@pytest.mark.parametrize("payload", [{}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": ["a"]}])
def test_a_token_needs_a_name(client, cast, payload):
    login(client, cast.bob)
    response = client.post(TOKENS, payload, content_type="application/json")
    assert response.status_code == 400 and "error" in response.json()
    assert not ApiToken.objects.exists()


def test_a_token_cannot_create_more_tokens(client, cast):
    _, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    response = client.post(TOKENS, {"name": "offspring"}, content_type="application/json", headers=bearer(key))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "session_required"
    assert ApiToken.objects.count() == 1


def test_the_twenty_first_active_token_is_refused(client, cast):
    for i in range(20):
        admin_actions.create_api_token(by=cast.bob, name=f"t{i}")
    login(client, cast.bob)
    response = client.post(TOKENS, {"name": "one more"}, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "too_many"


def test_revoking_with_delete_or_post_and_the_key_stops_working(client, cast):
    first, first_key = admin_actions.create_api_token(by=cast.bob, name="one")
    second, second_key = admin_actions.create_api_token(by=cast.bob, name="two")
    login(client, cast.bob)
    assert client.delete(f"{TOKENS}{first.pk}/").status_code == 204
    response = client.post(f"{TOKENS}{second.pk}/revoke")
    assert response.status_code == 200 and response.json()["active"] is False
    assert response.json()["revoked_at"]
    client.logout()
    assert_401(client.get(TOKENS, headers=bearer(first_key)))
    assert_401(client.get(TOKENS, headers=bearer(second_key)))
    # Kept, marked revoked, audited.
    assert ApiToken.objects.filter(revoked_at__isnull=False).count() == 2
    assert AuditEntry.objects.filter(action="api_token.revoked").count() == 2


def test_a_token_can_revoke_itself(client, cast):
    token, key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    assert client.delete(f"{TOKENS}{token.pk}/", headers=bearer(key)).status_code == 204
    assert_401(client.get(TOKENS, headers=bearer(key)))


def test_filtering_tokens_by_active(client, cast):
    revoked, _ = admin_actions.create_api_token(by=cast.bob, name="old")
    admin_actions.revoke_api_token(revoked, by=cast.bob)
    active, _ = admin_actions.create_api_token(by=cast.bob, name="new")
    login(client, cast.bob)
    assert [row["id"] for row in client.get(TOKENS, {"active": "true"}).json()["results"]] == [active.pk]
    assert [row["id"] for row in client.get(TOKENS, {"active": "false"}).json()["results"]] == [revoked.pk]
    assert client.get(TOKENS, {"active": "maybe"}).status_code == 400


@pytest.mark.parametrize("who", ["erin", "alice", "carol"])
def test_someone_elses_token_is_a_404_and_stays_active(client, cast, who):
    # Even an admin who manages Bob (alice) reaches only her own tokens through the API.
    token, _key = admin_actions.create_api_token(by=cast.bob, name="CRM")
    login(client, getattr(cast, who))
    assert client.get(f"{TOKENS}{token.pk}/").status_code == 404
    assert client.delete(f"{TOKENS}{token.pk}/").status_code == 404
    assert client.post(f"{TOKENS}{token.pk}/revoke").status_code == 404
    token.refresh_from_db()
    assert token.active
    assert client.get(TOKENS).json()["count"] == 0


# --- Settings → API tokens ---------------------------------------------------------------------------------


def test_every_employee_has_the_api_tokens_section(client, cast):
    for employee in (cast.bob, cast.dave, cast.sam):
        login(client, employee)
        html = client.get(reverse("web:inbox")).content.decode()
        assert 'data-testid="nav-settings"' in html
        page = client.get(reverse("web:api-tokens"))
        assert page.status_code == 200
        assert page.context["section"] == "web:api-tokens" and page.context["settings_page"] is True
        assert reverse("api-docs") in page.content.decode()


def test_the_page_needs_a_signed_in_employee(client, cast):
    response = client.get(reverse("web:api-tokens"))
    assert response.status_code == 302 and reverse("web:login") in response["Location"]


def test_create_in_the_page_call_the_api_revoke_in_the_page_then_401(client, cast):
    login(client, cast.bob)
    response = client.post(reverse("web:api-tokens"), {"name": "CRM sync"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = response.context["new_key"]
    html = response.content.decode()
    assert key in html and 'data-testid="new-key"' in html
    assert "won't be shown again" in html

    # Shown once: the page never shows it again.
    assert key not in client.get(reverse("web:api-tokens")).content.decode()

    api = Client()
    assert api.get(f"{API}conversations/", {"view": "all"}, headers=bearer(key)).status_code == 200

    token = ApiToken.objects.get(employee=cast.bob)
    response = client.post(reverse("web:api-token-revoke", args=[token.pk]))
    assert response.status_code == 302 and response["Location"] == reverse("web:api-tokens")
    assert_401(api.get(f"{API}conversations/", headers=bearer(key)))
    html = client.get(reverse("web:api-tokens")).content.decode()
    assert "Revoked" in html and "CRM sync" in html


def test_the_page_lists_only_own_tokens(client, cast):
    admin_actions.create_api_token(by=cast.bob, name="Bob CRM")
    admin_actions.create_api_token(by=cast.erin, name="Erin script")
    login(client, cast.bob)
    html = client.get(reverse("web:api-tokens")).content.decode()
    assert "Bob CRM" in html and "Erin script" not in html


def test_an_empty_name_is_shown_as_a_form_error(client, cast):
    login(client, cast.bob)
    response = client.post(reverse("web:api-tokens"), {"name": "  "})
    assert response.status_code == 200 and response.context["new_key"] is None
    assert response.context["form"].errors
    assert not ApiToken.objects.exists()


def test_revoking_someone_elses_token_in_the_page_is_a_404(client, cast):
    token, _ = admin_actions.create_api_token(by=cast.bob, name="CRM")
    for employee in (cast.erin, cast.carol):
        login(client, employee)
        assert client.post(reverse("web:api-token-revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.active


def test_revoking_in_the_page_needs_a_post(client, cast):
    token, _ = admin_actions.create_api_token(by=cast.bob, name="CRM")
    login(client, cast.bob)
    assert client.get(reverse("web:api-token-revoke", args=[token.pk])).status_code == 405
    token.refresh_from_db()
    assert token.active
