"""The Content-Security-Policy: every page sends a strict one, and every page obeys it.

The walk reuses tests/test_url_matrix.py's list of every named URL (each GET as someone who
may open it, following redirects to the page that answers), plus the pages outside it: the
second sign-in step, the demo website, and the Django admin. Each answer must carry the
policy; each HTML page may run only scripts and styles that the policy lets through, so no
inline event handler, no `javascript:` URL, no style attribute, and every inline <script> or
<style> carries the nonce of its own response. tests/test_browser_csp.py then loads the pages
in a real Chromium and counts violations.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from helpdesk.conversations.models import Channel, ChannelKind
from tests.conftest import PASSWORD
from tests.test_sign_in import _run, turn_on_2fa
from tests.test_url_matrix import MATRIX, world  # noqa: F401  (the shared fixture)

HEADER = "Content-Security-Policy"
# Who opens each page: the first of these the matrix lets in.
OPENERS = ("sam", "alice", "bob", "anonymous")
DATA_SCRIPT_TYPES = {"application/json", "application/ld+json"}


def directives(response) -> dict[str, list[str]]:
    header = response.headers.get(HEADER)
    assert header, f"{response.request['PATH_INFO']}: no {HEADER} header"
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def nonce_of(values: list[str]) -> str | None:
    nonces = [v[len("'nonce-") : -1] for v in values if v.startswith("'nonce-")]
    assert len(nonces) <= 1
    return nonces[0] if nonces else None


class PageCode(HTMLParser):
    """What in an HTML page the policy has a say about."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inline_scripts: list[str | None] = []  # their nonces
        self.inline_styles: list[str | None] = []
        self.handlers: list[str] = []
        self.style_attributes: list[str] = []
        self.javascript_urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script" and "src" not in attributes:
            if (attributes.get("type") or "").lower() not in DATA_SCRIPT_TYPES:
                self.inline_scripts.append(attributes.get("nonce"))
        if tag == "style":
            self.inline_styles.append(attributes.get("nonce"))
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
            if name == "style":
                self.style_attributes.append(f"<{tag} style={value!r}>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.javascript_urls.append(f"<{tag} {name}={value!r}>")


def assert_strict_and_obeyed(response) -> None:
    policy = directives(response)
    if not response["Content-Type"].startswith("text/html"):
        return  # JSON, CSV, images: nothing runs in them (the logo sends its own, stricter policy)
    script_src = policy["script-src"]
    assert "'self'" in script_src
    assert not {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:"} & set(script_src), script_src
    assert not {"'unsafe-inline'", "*"} & set(policy["style-src"]), policy["style-src"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] in (["'none'"], ["'self'"])
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "ws://testserver"]
    assert set(policy["img-src"]) == {"'self'", "data:"}
    assert policy["default-src"] == ["'self'"]
    page = PageCode()
    page.feed(response.content.decode())
    where = response.request["PATH_INFO"]
    assert page.handlers == [], f"{where}: inline event handlers"
    assert page.javascript_urls == [], f"{where}: javascript: URLs"
    assert page.style_attributes == [], f"{where}: style attributes (style-src has no 'unsafe-inline')"
    if page.inline_scripts:
        assert nonce_of(script_src) is not None, f"{where}: inline scripts but no nonce in the policy"
        assert set(page.inline_scripts) == {nonce_of(script_src)}, f"{where}: an inline script without the nonce"
    if page.inline_styles:
        assert nonce_of(policy["style-src"]) is not None, f"{where}: inline styles but no nonce in the policy"
        assert set(page.inline_styles) == {nonce_of(policy["style-src"])}, f"{where}: a <style> without the nonce"


GET_PAGES = sorted(name for name, entry in MATRIX.items() if entry.method == "get")


@pytest.mark.parametrize("name", GET_PAGES)
def test_every_page_sends_a_strict_policy_and_obeys_it(name, world):  # noqa: F811
    entry = MATRIX[name]
    opener = next((actor for actor in OPENERS if entry.expect[actor] in (200, 302)), "anonymous")
    client = Client()
    employee = getattr(world, opener, None)
    if employee is not None:
        client.force_login(employee.user)
    world.me = employee
    url = reverse(name, kwargs=entry.kwargs(world))
    data = entry.data(world) if entry.data else {}
    first = client.get(url, data, headers=entry.headers)
    directives(first)  # redirects and refusals carry it too
    response = client.get(url, data, headers=entry.headers, follow=True) if first.status_code == 302 else first
    assert_strict_and_obeyed(response)


def test_the_api_docs_inline_script_carries_the_nonce(client, cast):
    client.force_login(cast.sam.user)
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    page = PageCode()
    page.feed(response.content.decode())
    assert page.inline_scripts, "the Swagger UI page starts itself with an inline script"
    assert_strict_and_obeyed(response)
    # A fresh nonce each time.
    again = client.get(reverse("api-docs"))
    assert nonce_of(directives(again)["script-src"]) != nonce_of(directives(response)["script-src"])


def test_the_second_sign_in_step_sends_the_policy(client, cast):
    turn_on_2fa(cast.bob)
    response = client.post(reverse("web:login"), {"username": "bob@acme.test", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("web:login-2fa")
    assert_strict_and_obeyed(response)


def test_errors_send_the_policy_too(client, cast):
    client.force_login(cast.bob.user)
    assert_strict_and_obeyed(client.get("/no-such-page/"))
    forbidden = client.get(reverse("web:employees"))
    assert forbidden.status_code == 403
    assert_strict_and_obeyed(forbidden)


def test_the_demo_website_sends_the_policy(client, db):
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    channel = Channel.objects.get(company__name="Demo Company", kind=ChannelKind.WIDGET)
    response = client.get(reverse("web:demo", args=[channel.public_key]))
    assert response.status_code == 200
    assert_strict_and_obeyed(response)


def test_the_django_admin_sends_the_policy_and_obeys_it(client, cast):
    operator = get_user_model().objects.create_superuser("operator", "operator@example.test", PASSWORD)
    client.force_login(operator)
    for url in (
        reverse("admin:index"),
        reverse("admin:accounts_company_changelist"),
        reverse("admin:accounts_company_change", args=[cast.acme.pk]),
        reverse("admin:accounts_employee_change", args=[cast.bob.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict_and_obeyed(response)


def test_the_policy_can_be_sent_as_report_only_with_a_report_address(tmp_path):
    code = (
        "import django; django.setup(); from csp.utils import build_policy;"
        " print(repr(build_policy())); print(build_policy(report_only=True))"
    )
    env = {"DJANGO_SETTINGS_MODULE": "smartchat.settings", "SMARTCHAT_DATA_DIR": str(tmp_path)}
    default = _run(code, **env)
    assert default.returncode == 0, default.stderr
    enforced, report_only = default.stdout.splitlines()
    assert "object-src 'none'" in enforced and "report-uri" not in enforced and report_only == ""

    trial = _run(code, **env, CSP_REPORT_ONLY="true", CSP_REPORT_URI="https://csp.example.test/report")
    assert trial.returncode == 0, trial.stderr
    enforced, report_only = trial.stdout.splitlines()
    assert enforced == "''"
    assert "object-src 'none'" in report_only and report_only.endswith("report-uri https://csp.example.test/report")


def test_sockets_of_the_same_host_are_named_in_connect_src(client, cast):
    # 'self' covers them in CSP level 3 browsers; older ones (Safari before 15.4) need the origin.
    assert directives(client.get(reverse("web:login")))["connect-src"] == ["'self'", "ws://testserver"]
    secure = client.get(reverse("web:login"), secure=True)
    assert directives(secure)["connect-src"] == ["'self'", "wss://testserver"]


def test_a_host_we_do_not_serve_is_refused_cleanly_with_the_policy(client, cast):
    response = client.get(reverse("web:login"), headers={"host": "evil.example"})
    assert response.status_code == 400
    assert directives(response)["connect-src"] == ["'self'"]
