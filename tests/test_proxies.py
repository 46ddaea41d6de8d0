"""Whose address is it: forwarded headers are believed only from TRUSTED_PROXIES, on real uvicorn.

The sign-in lock-out and the audit log key on the client's address, so a client that could
name its own address with X-Forwarded-For would never be locked out. uvicorn runs with
--no-proxy-headers everywhere; smartchat.asgi applies the one rule, for HTTP and websockets.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import urllib.parse

import pytest
import websockets

from helpdesk.events.models import AuditEntry
from tests.conftest import PASSWORD
from tests.live import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in_over_http(base_url: str, username: str, password: str, headers: dict[str, str] | None = None) -> int:
    """GET the sign-in page, then POST the form, as a browser does; the status of the POST.

    Cookies are carried by hand: under HTTPS=true they are Secure, and a cookie jar would keep
    them from a plain-HTTP test server that a proxy in front has told it is HTTPS.
    """
    url = urllib.parse.urlsplit(base_url)
    headers = dict(headers or {})
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", "/login/", headers=headers)
        page = conn.getresponse()
        assert page.status == 200, page.status
        body = page.read().decode()
        csrf_cookie = re.search(r"csrftoken=([^;]+)", page.getheader("Set-Cookie") or "").group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1)
        scheme = "https" if headers.get("X-Forwarded-Proto") == "https" else "http"
        form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
        conn.request(
            "POST",
            "/login/",
            body=form,
            headers={
                **headers,
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"csrftoken={csrf_cookie}",
                "Origin": f"{scheme}://{url.netloc}",
                "Referer": f"{scheme}://{url.netloc}/login/",
            },
        )
        answer = conn.getresponse()
        answer.read()
        return answer.status
    finally:
        conn.close()


def sign_in_addresses() -> list[str | None]:
    return list(AuditEntry.objects.filter(action__startswith="signin.").order_by("id").values_list("ip", flat=True))


def test_forged_forwarded_addresses_do_not_escape_the_lock_out(asgi_server, tcast, settings):
    """The review's repro: twelve wrong passwords, each claiming another address."""
    statuses = [
        sign_in_over_http(
            asgi_server.url, "bob@acme.test", "wrong", headers={"X-Forwarded-For": f"198.51.100.{attempt}"}
        )
        for attempt in range(1, 13)
    ]
    limit = settings.AXES_FAILURE_LIMIT
    assert statuses[: limit - 1] == [200] * (limit - 1)
    assert statuses[limit - 1 :] == [429] * (12 - limit + 1)
    # Even the right password is refused now, whatever address it claims.
    assert sign_in_over_http(asgi_server.url, "bob@acme.test", PASSWORD, {"X-Forwarded-For": "203.0.113.1"}) == 429
    # The audit log names the real peer, never an address the client made up.
    assert set(sign_in_addresses()) == {"127.0.0.1"}


def status_of(base_url: str, path: str, headers: dict[str, str]) -> int:
    url = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


async def socket_address(server: ServerProcess, headers: dict[str, str]) -> str:
    async with websockets.connect(f"{server.ws_url}/ws/test-address/", additional_headers=headers) as ws:
        return await asyncio.wait_for(ws.recv(), 5)


@pytest.fixture
def serve(tcast):
    """A server process of its own (settings differ) serving smartchat.asgi plus the address probe."""
    started = []

    def start(**env: str) -> ServerProcess:
        started.append(ServerProcess(env={"HTTPS": "true", **env}, app="tests.address_probe:application").start())
        return started[-1]

    yield start
    for server in started:
        server.stop()


FORGED = {"X-Forwarded-For": "203.0.113.50", "X-Forwarded-Proto": "https"}


@pytest.mark.redis
def test_without_trusted_proxies_forwarded_headers_change_nothing(serve, tcast):
    server = serve()  # TRUSTED_PROXIES unset: the default
    # HTTPS=true redirects plain HTTP; a client saying "it was HTTPS" does not stop that.
    assert status_of(server.url, "/login/", FORGED) == 301
    # The socket sees the real peer, as HTTP does.
    assert asyncio.run(socket_address(server, FORGED)) == "127.0.0.1"


@pytest.mark.redis
def test_from_a_trusted_proxy_the_client_it_reports_counts(serve, tcast):
    server = serve(TRUSTED_PROXIES="127.0.0.1")
    assert status_of(server.url, "/login/", {}) == 301  # the proxy did not say HTTPS
    assert status_of(server.url, "/login/", {"X-Forwarded-Proto": "https"}) == 200
    # The proxy appends its client to what that client sent: the right-most untrusted one counts.
    chain = {"X-Forwarded-For": "198.51.100.66, 203.0.113.50", "X-Forwarded-Proto": "https"}
    # (A wrong password: the server process hashes with Argon2, the test cast with MD5.)
    assert sign_in_over_http(server.url, "bob@acme.test", "wrong", chain) == 200
    assert sign_in_addresses() == ["203.0.113.50"]
    assert asyncio.run(socket_address(server, chain)) == "203.0.113.50"
    # A proxy that reports something other than an address: no address, and no error.
    unknown = {"X-Forwarded-For": "unknown", "X-Forwarded-Proto": "https"}
    assert sign_in_over_http(server.url, "bob@acme.test", "wrong", unknown) == 200
    assert sign_in_addresses() == ["203.0.113.50", None]
