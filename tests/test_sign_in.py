"""Signing in: audited, throttled, with an optional (or required) second factor; deploy settings."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone

from helpdesk.accounts import actions
from helpdesk.events.models import AuditEntry
from tests.conftest import PASSWORD, login

ROOT = Path(__file__).resolve().parent.parent


def sign_in(client, username: str, password: str = PASSWORD, **extra):
    return client.post(reverse("web:login"), {"username": username, "password": password}, **extra)


def audit(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


def turn_on_2fa(employee) -> pyotp.TOTP:
    secret = actions.new_totp_secret()
    totp = pyotp.TOTP(secret)
    # Enabled with the previous step's code, so the current code is still unused for sign-in.
    actions.enable_totp(employee, secret=secret, code=totp.generate_otp(totp.timecode(timezone.now()) - 1))
    employee.refresh_from_db()
    return totp


def test_signing_in_is_audited_with_the_address(client, cast):
    response = sign_in(client, "Bob@Acme.test", REMOTE_ADDR="203.0.113.7")  # any case works
    assert response.status_code == 302 and response.url == reverse("web:inbox")
    (entry,) = audit("signin.succeeded")
    assert (entry.company_id, entry.actor_id, entry.ip) == (cast.acme.pk, cast.bob.pk, "203.0.113.7")


def test_failed_sign_ins_are_audited_for_the_company_they_name(client, cast):
    response = sign_in(client, "bob@acme.test", "wrong")
    assert response.status_code == 200 and "don't match" in response.content.decode()
    sign_in(client, "ghost@nowhere.test", "wrong")
    named, unknown = audit("signin.failed")
    assert (named.company_id, named.actor_id, named.after) == (
        cast.acme.pk,
        cast.bob.pk,
        {"reason": "wrong e-mail or password"},
    )
    assert (unknown.company_id, unknown.actor_name) == (None, "ghost@nowhere.test")


def test_too_many_failures_lock_the_address_out_with_a_clear_message(client, cast, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert sign_in(client, "bob@acme.test", "wrong").status_code == 200
    locked = sign_in(client, "bob@acme.test", "wrong")
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts" in locked.content.decode()
    # Even the right password is refused while locked, and nobody is signed in.
    assert sign_in(client, "bob@acme.test").status_code == 429
    assert client.get(reverse("web:inbox")).status_code == 302
    assert audit("signin.failed")[-1].after == {"reason": "locked out"}
    # The same account from another address is not locked: nobody can lock a colleague out.
    other = client_class_from(client)
    assert sign_in(other, "bob@acme.test", REMOTE_ADDR="198.51.100.9").status_code == 302


def client_class_from(client):
    return type(client)()


def test_a_guesser_spread_over_many_addresses_locks_the_account(client, cast, settings):
    per_address = settings.AXES_FAILURE_LIMIT - 1  # each address stays under its own limit
    addresses = iter(f"198.51.100.{n}" for n in range(1, 255))
    failures = 0
    while failures < settings.LOGIN_ACCOUNT_FAILURE_LIMIT - 1:
        address = next(addresses)
        for _ in range(min(per_address, settings.LOGIN_ACCOUNT_FAILURE_LIMIT - 1 - failures)):
            assert sign_in(client, "bob@acme.test", "wrong", REMOTE_ADDR=address).status_code == 200
            failures += 1
    # The owner signing in meanwhile clears only their own address's failures.
    assert sign_in(client_class_from(client), "bob@acme.test", REMOTE_ADDR="203.0.113.7").status_code == 302
    locked = sign_in(client, "bob@acme.test", "wrong", REMOTE_ADDR=next(addresses))
    assert locked.status_code == 429 and "Too many failed sign-in attempts" in locked.content.decode()
    # Now the account is closed from everywhere, even to the right password, for the cool-off.
    assert sign_in(client_class_from(client), "bob@acme.test", REMOTE_ADDR="203.0.113.8").status_code == 429
    assert [e.after for e in audit("signin.failed")[-2:]] == [{"reason": "account locked out"}] * 2
    # Other accounts are not touched.
    assert sign_in(client_class_from(client), "erin@acme.test", REMOTE_ADDR="203.0.113.8").status_code == 302
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert sign_in(client_class_from(client), "bob@acme.test", REMOTE_ADDR="203.0.113.8").status_code == 302


def test_one_address_cannot_lock_a_colleagues_account_by_itself(client, cast, settings):
    # Attempts refused during its lock-out are not counted against the account.
    for _ in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT + 5):
        sign_in(client, "bob@acme.test", "wrong", REMOTE_ADDR="198.51.100.1")
    assert sign_in(client_class_from(client), "bob@acme.test", REMOTE_ADDR="203.0.113.7").status_code == 302


def test_the_lock_out_ends_after_the_cool_off(client, cast, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, "bob@acme.test", "wrong")
    assert sign_in(client, "bob@acme.test").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert sign_in(client, "bob@acme.test").status_code == 302


def test_the_lock_out_message_speaks_russian(client, cast, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = sign_in(client, "bob@acme.test", "wrong", HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 429 and "Слишком много" in response.content.decode()


# --- Two-factor sign-in -------------------------------------------------------------------------------


def test_with_two_factor_the_password_alone_opens_nothing(client, cast):
    totp = turn_on_2fa(cast.bob)
    response = sign_in(client, "bob@acme.test")
    assert response.status_code == 302 and response.url == reverse("web:login-2fa")
    assert client.get(reverse("web:inbox")).status_code == 302  # not signed in yet
    wrong = client.post(reverse("web:login-2fa"), {"code": "123456"})
    assert wrong.status_code == 200 and "not right" in wrong.content.decode()
    right = client.post(reverse("web:login-2fa"), {"code": totp.now()})
    assert right.status_code == 302 and right.url == reverse("web:inbox")
    assert client.get(reverse("web:inbox")).status_code == 200
    assert [e.after for e in audit("signin.failed")] == [{"reason": "wrong two-factor code"}]
    assert len(audit("signin.succeeded")) == 1


def test_a_code_cannot_be_used_twice(client, cast):
    totp = turn_on_2fa(cast.bob)
    sign_in(client, "bob@acme.test")
    assert client.post(reverse("web:login-2fa"), {"code": totp.now()}).status_code == 302
    other = client_class_from(client)
    sign_in(other, "bob@acme.test")
    assert other.post(reverse("web:login-2fa"), {"code": totp.now()}).status_code == 200


def test_too_many_wrong_codes_start_the_sign_in_over(client, cast):
    turn_on_2fa(cast.bob)
    sign_in(client, "bob@acme.test")
    for _ in range(5):
        response = client.post(reverse("web:login-2fa"), {"code": "000000"})
    assert response.status_code == 302 and response.url == reverse("web:login")
    assert client.get(reverse("web:login-2fa")).url == reverse("web:login")


def test_the_code_step_without_a_password_step_goes_back_to_sign_in(client, cast):
    response = client.get(reverse("web:login-2fa"))
    assert response.status_code == 302 and response.url == reverse("web:login")


def test_an_employee_turns_two_factor_on_and_off(client, cast):
    login(client, cast.bob)
    page = client.get(reverse("web:two-factor"))
    html = page.content.decode()
    assert page.status_code == 200 and "<svg" in html
    secret = client.session["smartchat.2fa.setup-secret"]
    assert secret in html
    totp = pyotp.TOTP(secret)
    assert client.post(reverse("web:two-factor-enable"), {"code": "000000"}).status_code == 302
    cast.bob.refresh_from_db()
    assert not cast.bob.has_2fa
    client.post(reverse("web:two-factor-enable"), {"code": totp.generate_otp(totp.timecode(timezone.now()) - 1)})
    cast.bob.refresh_from_db()
    assert cast.bob.has_2fa and cast.bob.totp_secret == secret
    client.post(reverse("web:two-factor-disable"), {"code": "000000"})
    cast.bob.refresh_from_db()
    assert cast.bob.has_2fa
    client.post(reverse("web:two-factor-disable"), {"code": totp.now()})
    cast.bob.refresh_from_db()
    assert not cast.bob.has_2fa
    assert [e.action for e in AuditEntry.objects.order_by("id")] == ["employee.2fa_enabled", "employee.2fa_disabled"]


def test_a_company_that_requires_it_sends_admins_to_set_it_up(client, cast):
    actions.update_company(cast.acme, by=cast.alice, require_2fa_for_admins=True)
    login(client, cast.alice)
    response = client.get(reverse("web:inbox"))
    assert response.status_code == 302 and response.url == reverse("web:two-factor")
    assert client.get(reverse("web:two-factor")).status_code == 200
    api = client.get(reverse("api:conversations"))
    assert api.status_code == 403 and api.json()["error"]["code"] == "2fa_required"
    # Agents are not admins: nothing changes for them.
    login(client, cast.bob)
    assert client.get(reverse("web:inbox")).status_code == 200


def test_a_required_second_factor_cannot_be_turned_off(client, cast):
    totp = turn_on_2fa(cast.alice)
    actions.update_company(cast.acme, by=cast.alice, require_2fa_for_admins=True)
    login(client, cast.alice)
    client.post(reverse("web:two-factor-disable"), {"code": totp.now()})
    cast.alice.refresh_from_db()
    assert cast.alice.has_2fa


# --- Production settings ------------------------------------------------------------------------------


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60
    )


def test_the_deploy_checks_pass_under_production_settings(tmp_path):
    result = _run(
        "import django, sys; django.setup(); from django.core.management import call_command;"
        " call_command('check', deploy=True, fail_level='WARNING')",
        SECRET_KEY=secrets.token_urlsafe(50),
        HTTPS="true",
        ALLOWED_HOSTS="support.example.com",
        DJANGO_SETTINGS_MODULE="smartchat.settings",
        SMARTCHAT_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout + result.stderr


def test_passwords_are_hashed_with_argon2(tmp_path):
    result = _run(
        "import django, json; django.setup(); from django.contrib.auth.hashers import make_password;"
        " print(json.dumps(make_password('x' * 12)))",
        DJANGO_SETTINGS_MODULE="smartchat.settings",
        SMARTCHAT_DATA_DIR=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout).startswith("argon2$argon2id$")


@pytest.mark.parametrize("cookie", ["SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"])
def test_cookies_are_secure_and_http_only_behind_https(tmp_path, cookie):
    result = _run(
        "import django, json; django.setup(); from django.conf import settings as s;"
        f" print(json.dumps([s.{cookie}, s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT]))",
        SECRET_KEY=secrets.token_urlsafe(50),
        HTTPS="true",
        DJANGO_SETTINGS_MODULE="smartchat.settings",
        SMARTCHAT_DATA_DIR=str(tmp_path),
    )
    assert json.loads(result.stdout) == [True, True, True]


def test_an_admin_turns_off_the_second_factor_of_someone_who_lost_their_phone(client, cast):
    turn_on_2fa(cast.bob)
    login(client, cast.alice)
    page = client.get(reverse("web:employee", args=[cast.bob.pk])).content.decode()
    assert 'data-testid="reset-2fa"' in page
    response = client.post(reverse("web:employee-reset-2fa", args=[cast.bob.pk]), follow=True)
    assert "Two-factor sign-in is off for Bob." in response.content.decode()
    cast.bob.refresh_from_db()
    assert not cast.bob.has_2fa and cast.bob.totp_secret == ""
    (entry,) = audit("employee.2fa_disabled")
    assert (entry.actor_id, entry.object_id) == (cast.alice.pk, str(cast.bob.pk))
    # Bob signs in with his password alone again.
    assert sign_in(client_class_from(client), "bob@acme.test").url == reverse("web:inbox")


def test_an_agent_cannot_turn_off_a_colleagues_second_factor(client, cast):
    turn_on_2fa(cast.erin)
    login(client, cast.bob)
    assert client.post(reverse("web:employee-reset-2fa", args=[cast.erin.pk])).status_code == 403
    cast.erin.refresh_from_db()
    assert cast.erin.has_2fa
