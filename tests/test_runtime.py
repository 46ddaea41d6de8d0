"""The runtime around the code: settings chosen from the environment, and a real Celery worker."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from celery.contrib.testing.worker import start_worker
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection
from django.utils import timezone

from helpdesk.conversations import actions
from helpdesk.conversations.models import Conversation, Status
from helpdesk.conversations.tasks import wake_due_conversations
from helpdesk.events.models import Event
from smartchat.celery import app
from smartchat.secret_key import PUBLIC_KEYS
from tests.test_sockets import connected_inbox, events_received

ROOT = Path(__file__).resolve().parent.parent
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], 'layer': s.CHANNEL_LAYERS['default']['BACKEND'],"
    " 'broker': s.CELERY_BROKER_URL, 'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS}))"
)


SET_BY_RUNTIME = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY", "DEBUG", "TRUSTED_PROXIES")
KEY = "k3y-for-the-settings-tests-" + "x" * 40


def clean_env(tmp_path, **env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in SET_BY_RUNTIME}
    clean.update(DJANGO_SETTINGS_MODULE="smartchat.settings", SMARTCHAT_DATA_DIR=str(tmp_path), **env)
    return clean


def settings_with(tmp_path, probe: str = PROBE, **env: str) -> subprocess.CompletedProcess:
    """Load the settings in a fresh interpreter with exactly this environment."""
    return subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=clean_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_with_nothing_set_it_runs_on_the_embedded_default(tmp_path):
    result = settings_with(tmp_path)
    assert result.returncode == 0, result.stderr
    chosen = json.loads(result.stdout)
    assert chosen["db"] == "django.db.backends.sqlite3"
    assert chosen["layer"] == "channels.layers.InMemoryChannelLayer"
    assert chosen["broker"] == "filesystem://"
    assert (tmp_path / "broker").is_dir()


def test_with_urls_set_it_runs_on_postgres_and_redis(tmp_path):
    result = settings_with(
        tmp_path,
        DATABASE_URL="postgres://smartchat@db.internal:5432/smartchat",
        REDIS_URL="redis://cache.internal:6379/0",
        SECRET_KEY=KEY,
        ALLOWED_HOSTS="support.example.com, chat.example.com",
        DEBUG="false",
    )
    assert result.returncode == 0, result.stderr
    chosen = json.loads(result.stdout)
    assert chosen["db"] == "django.db.backends.postgresql"
    assert chosen["layer"] == "channels_redis.core.RedisChannelLayer"
    assert chosen["broker"] == "redis://cache.internal:6379/0"
    assert chosen["debug"] is False
    assert chosen["hosts"] == ["support.example.com", "chat.example.com"]


def test_on_postgres_and_redis_the_scheduler_has_a_directory_for_its_schedule(tmp_path):
    # A fresh checkout has no .data/; beat crashed on opening its schedule file there (found by test_boot).
    data_dir = tmp_path / "fresh"
    result = settings_with(
        data_dir,
        DATABASE_URL="postgres://smartchat@db.internal:5432/smartchat",
        REDIS_URL="redis://cache.internal:6379/0",
        SECRET_KEY=KEY,
    )
    assert result.returncode == 0, result.stderr
    assert data_dir.is_dir()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "maybe"),
        ("PRESENCE_TIMEOUT_SECONDS", "soon"),
        ("DB_CONN_MAX_AGE", "-5"),
        ("TRUSTED_PROXIES", "10.0.0.1, 10.0.0.300"),
        ("TRUSTED_PROXIES", "10.1.2.3/8"),
        ("TRUSTED_PROXIES", "*"),
    ],
)
def test_a_bad_value_stops_start_up_and_names_the_setting(tmp_path, name, value):
    result = settings_with(tmp_path, DATABASE_URL="postgres://x@localhost/x", SECRET_KEY=KEY, **{name: value})
    assert result.returncode != 0
    assert f"{name}={value!r} is not valid" in result.stderr


def test_trusted_proxies_take_addresses_and_networks(tmp_path):
    probe = "import django; django.setup(); from django.conf import settings as s; print(s.TRUSTED_PROXIES)"
    result = settings_with(tmp_path, probe, TRUSTED_PROXIES=" 10.0.0.5, 172.16.0.0/12,,::1 ")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['10.0.0.5', '172.16.0.0/12', '::1']"


# --- SECRET_KEY ------------------------------------------------------------------------------------

KEY_PROBE = "import django; django.setup(); from django.conf import settings as s; print(s.SECRET_KEY)"


def test_with_a_database_url_it_refuses_to_run_without_a_secret_key(tmp_path):
    result = settings_with(tmp_path, KEY_PROBE, DATABASE_URL="postgres://x@localhost/x", DEBUG="true")
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
    assert "secrets.token_urlsafe(50)" in result.stderr  # how to make one
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    "env",
    [{"DATABASE_URL": "postgres://x@localhost/x", "DEBUG": "true"}, {"DEBUG": "false"}, {}],
    ids=["database-url", "debug-off", "defaults"],
)
def test_the_published_development_key_is_refused(tmp_path, env):
    result = settings_with(tmp_path, KEY_PROBE, SECRET_KEY=next(iter(PUBLIC_KEYS)), **env)
    assert result.returncode != 0
    assert "SECRET_KEY is the published development key" in result.stderr


def test_the_embedded_default_makes_one_private_key_and_keeps_it(tmp_path):
    # Web, worker and beat start at the same moment on the embedded default.
    starting = [
        subprocess.Popen(
            [sys.executable, "-c", KEY_PROBE], cwd=ROOT, env=clean_env(tmp_path), stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    keys = {process.communicate(timeout=60)[0].strip() for process in starting}
    assert all(process.returncode == 0 for process in starting)
    (key,) = keys
    assert len(key) >= 50 and key not in PUBLIC_KEYS
    kept = tmp_path / "secret_key"
    assert kept.read_text().strip() == key
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    # The next start reads the same key: sessions survive a restart.
    assert settings_with(tmp_path, KEY_PROBE).stdout.strip() == key
    # A given key wins over the kept one.
    assert settings_with(tmp_path, KEY_PROBE, SECRET_KEY=KEY).stdout.strip() == KEY


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_wakes_a_conversation_whose_snooze_is_over(tcast, settings):
    # The worker thread opens its own connection; close it after each task so the test
    # database can be dropped.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    conversation = tcast.conversation
    actions.snooze(conversation, by=tcast.bob, until=timezone.now() + timedelta(hours=1))
    # An hour passes: the wake time, kept in the database, is now behind us.
    Conversation.objects.filter(pk=conversation.pk).update(snoozed_until=timezone.now() - timedelta(seconds=1))
    not_due = actions.receive_message(
        channel=tcast.widget, external_contact_id="visitor-2", body="Later is fine", external_id="w:2"
    ).conversation
    actions.snooze(not_due, by=tcast.bob, until=timezone.now() + timedelta(days=1))

    # A queue of this test's own, so a development worker on the same broker can't take it.
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    connection.close()
    with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=20):
        wake_due_conversations.apply_async(queue=queue)
        deadline = time.monotonic() + 30
        while Conversation.objects.get(pk=conversation.pk).status != Status.OPEN:
            assert time.monotonic() < deadline, "the worker did not wake the conversation"
            time.sleep(0.2)

    assert Event.objects.filter(conversation=conversation, type="conversation.woken").count() == 1
    assert Conversation.objects.get(pk=not_due.pk).status == Status.SNOOZED


@pytest.mark.django_db(transaction=True)
async def test_the_assignee_hears_live_when_the_worker_wakes_their_conversation(tcast, settings, redis_layer):
    """Beat's task on a real worker: the wake-up leaves the worker through Redis to the assignee's socket."""
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    conversation = tcast.conversation
    await database_sync_to_async(actions.assign)(conversation, by=tcast.alice, assignee=tcast.bob)
    await database_sync_to_async(actions.snooze)(conversation, by=tcast.bob, until=timezone.now() + timedelta(hours=1))
    await database_sync_to_async(Conversation.objects.filter(pk=conversation.pk).update)(
        snoozed_until=timezone.now() - timedelta(seconds=1)
    )
    bob = await connected_inbox(tcast.bob)
    queue = f"test-{os.getpid()}-{time.monotonic_ns()}"
    worker = start_worker(app, pool="solo", perform_ping_check=False, queues=[queue], shutdown_timeout=20)
    # The worker starts and stops in threads of its own; this test's loop keeps serving the socket.
    await sync_to_async(worker.__enter__)()
    try:
        await sync_to_async(wake_due_conversations.apply_async)(queue=queue)
        deadline = time.monotonic() + 30
        woken = []
        while not woken:
            assert time.monotonic() < deadline, "no wake-up reached the assignee's socket"
            woken = [e for e in await events_received(bob) if e["type"] == "conversation.woken"]
    finally:
        await sync_to_async(worker.__exit__)(None, None, None)
    assert woken[0]["payload"]["reason"] == "time" and woken[0]["actor_id"] is None
    assert woken[0]["visible"] is True and woken[0]["payload"]["conversation"]["status"] == Status.OPEN
    await bob.disconnect()


def test_the_scheduler_runs_the_wake_up_task_often_enough():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == wake_due_conversations.name)
    assert entry["schedule"] <= 60  # the promise: a snoozed chat wakes within a minute
