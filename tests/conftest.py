"""The fixed test cast, built through the real services and actions.

Acme: sam (super-admin), alice (admin, sees all), bob (agent in Sales, team scope), erin
(agent in Support, team scope), dave (custom role that sees only chats assigned to him).
Globex: carol (admin of another company).
A visitor has written to Acme's widget (team Sales): ``cast.conversation``.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.utils import translation

from helpdesk.accounts import services
from helpdesk.accounts.models import Role, Scope
from helpdesk.accounts.permissions import AGENT_PERMS
from helpdesk.conversations import actions

PASSWORD = "correct-horse-battery"
ACME_ORIGIN = "https://shop.acme.test"


def pytest_report_header(config):
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    return f"smartchat: database={db} channel_layer={layer} broker={settings.CELERY_BROKER_URL.split(':')[0]}"


@pytest.fixture(autouse=True, scope="session")
def _fast_passwords_and_private_layer():
    # Hashing is not what these tests are about; a private prefix keeps parallel runs apart.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Async tests touch the ORM from executor threads; persistent connections there would
    # outlive the tests and keep the test database from being dropped.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    # celery.contrib.testing's start_worker sets the root logger to its own level ("error") for
    # the rest of the process, and every later test that counts log lines would count nothing.
    # A setup_logging receiver tells Celery that logging is configured (Django's LOGGING is).
    from celery.signals import setup_logging

    setup_logging.connect(_keep_djangos_logging, weak=False)
    layer = settings.CHANNEL_LAYERS["default"]
    if "redis" in layer["BACKEND"].lower():
        layer["CONFIG"]["prefix"] = f"smartchat-test-{os.getpid()}"
        # As the settings derive it: a ServerProcess given this layer prefix counts in the same keys.
        settings.RATE_LIMIT_KEY_PREFIX = f"{layer['CONFIG']['prefix']}-ratelimit"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # Every test starts with no requests counted: all of them come from 127.0.0.1.
    from helpdesk import ratelimits

    ratelimits.reset()


def _keep_djangos_logging(**kwargs) -> None:
    """Celery's setup_logging signal: logging stays as Django's settings made it."""


@pytest.fixture(autouse=True)
def _fresh_quick_answers():
    # A rule cached by a test whose transaction was rolled back must not answer in the next.
    from helpdesk.conversations import quick_answers

    quick_answers.forget()


@pytest.fixture(autouse=True)
def _fresh_channel_layer():
    # Each test gets its own channel layer instance. A live server that stops late leaves its
    # sockets' receive() bound to its own event loop inside the shared instance, and channels
    # then refuses every later receive ("Two event loops are trying to receive()").
    yield
    from channels.layers import channel_layers

    channel_layers.backends.pop("default", None)


@pytest.fixture(autouse=True)
def _no_real_providers(settings):
    # No test may reach the real Telegram or VK: a closed local port unless a fake is started.
    settings.TELEGRAM_API_URL = "http://127.0.0.1:9"
    settings.VK_API_URL = "http://127.0.0.1:9/method"


@pytest.fixture(autouse=True)
def _default_language():
    # Django's LocaleMiddleware leaves the request's language active in the thread; a test
    # that asked for Russian must not make the next one speak it.
    yield
    translation.activate(settings.LANGUAGE_CODE)


def build_cast() -> SimpleNamespace:
    acme = services.create_company(name="Acme", timezone="Europe/Moscow")
    globex = services.create_company(name="Globex", timezone="UTC")
    sales = services.create_team(company=acme, name="Sales")
    support = services.create_team(company=acme, name="Support")
    sam = services.create_employee(
        company=acme, email="sam@acme.test", name="Sam", role="super_admin", password=PASSWORD
    )
    alice = services.create_employee(
        company=acme, email="alice@acme.test", name="Alice", role="admin", password=PASSWORD
    )
    bob = services.create_employee(
        company=acme, email="bob@acme.test", name="Bob", role="agent", password=PASSWORD, teams=[sales]
    )
    erin = services.create_employee(
        company=acme, email="erin@acme.test", name="Erin", role="agent", password=PASSWORD, teams=[support]
    )
    assigned_only = Role.objects.create(
        company=acme, name="Assigned only", scope=Scope.ASSIGNED, permissions=[str(p) for p in AGENT_PERMS]
    )
    dave = services.create_employee(
        company=acme, email="dave@acme.test", name="Dave", role=assigned_only, password=PASSWORD
    )
    carol = services.create_employee(
        company=globex, email="carol@globex.test", name="Carol", role="admin", password=PASSWORD
    )
    widget = services.create_widget_channel(company=acme, name="Acme site", team=sales, allowed_origins=[ACME_ORIGIN])
    globex_widget = services.create_widget_channel(company=globex, name="Globex site", allowed_origins=["*"])
    first = actions.receive_message(
        channel=widget, external_contact_id="visitor-1", body="Hello, is my order shipped?", external_id="w:1"
    )
    return SimpleNamespace(
        acme=acme,
        globex=globex,
        sales=sales,
        support=support,
        sam=sam,
        alice=alice,
        bob=bob,
        erin=erin,
        dave=dave,
        carol=carol,
        widget=widget,
        globex_widget=globex_widget,
        conversation=first.conversation,
        first_message=first,
    )


@pytest.fixture
def cast(db) -> SimpleNamespace:
    return build_cast()


@pytest.fixture
def tcast(transactional_db) -> SimpleNamespace:
    """The cast, committed: for sockets and servers that read from other threads."""
    return build_cast()


def login(client, employee) -> None:
    client.force_login(employee.user)


@pytest.fixture
def asgi_server(transactional_db, settings):
    """uvicorn serving the real ASGI app on a free port, on the committed test database."""
    from tests.live import LiveServer

    # Connections opened by the server's worker threads close after each use, so the test
    # database can be flushed and dropped afterwards.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    server = LiveServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_layer():
    """Skip unless the channel layer is Redis; in CI (CI=true) it must be, so fail instead."""
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    if "redis" not in backend.lower():
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run with REDIS_URL set: the Redis channel layer is under test")
        pytest.skip("needs REDIS_URL: the Redis channel layer is under test")
