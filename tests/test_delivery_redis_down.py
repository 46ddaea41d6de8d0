"""A reply committed while Redis (the broker, the channel layer) is away is kept and sent later.

Two private ``redis-server``s on free ports (never the shared one) play the broker and the
channel layer; the test stops and starts them. The channel is the tests' ``Pigeon``; the
database is the real PostgreSQL, and the on-commit hand-off runs for real
(``events.log`` → ``realtime.fanout.publish`` → ``integrations.outbound.enqueue``). Sockets hear
of the event from their process's relay, which reads the event log and never Redis
(tests/test_relay.py stops Redis under live sockets).
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from helpdesk.conversations import actions, adapters, tasks
from helpdesk.conversations.models import Delivery, DeliveryStatus
from smartchat.celery import app
from tests.delivery_kit import Pigeon, channel_of, conversation_on, drain
from tests.helpers import event_types

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test's own, on its own port, that the test can stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def broker():
    """The Celery app pointed at a private Redis for the test, then back at the shared one."""
    redis = PrivateRedis()
    redis.start()
    old = app.conf.broker_url
    with _broker_url(redis.url):
        yield redis
    redis.stop()
    assert app.conf.broker_url == old


@contextmanager
def _broker_url(url: str):
    old = app.conf.broker_url
    app.conf.broker_url = url
    _forget_connections()
    try:
        yield
    finally:
        app.conf.broker_url = old
        _forget_connections()


def _forget_connections() -> None:
    # As Celery does after a fork: the next publish opens a pool to the broker now configured.
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def layer(settings):
    redis = PrivateRedis()
    redis.start()
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": redis.url, "socket_timeout": 5}], "prefix": "private"},
        }
    }
    yield redis
    redis.stop()


@pytest.fixture
def pigeon(monkeypatch, settings):
    settings.DELIVERY_QUEUE = "test-redis-down"
    adapter = Pigeon()
    monkeypatch.setitem(adapters._registry, adapter.kind, adapter)
    return adapter


@pytest.fixture
def chat(cast, pigeon):
    return conversation_on(channel_of(pigeon, cast.acme, cast.sales))


def sweep_and_send(pigeon, settings) -> list[str]:
    settings.DELIVERY_SWEEP_AFTER = 0
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert tasks.sweep_deliveries.run()["lost"] == 1
    for name, args, _eta in drain(settings.DELIVERY_QUEUE):
        assert name == "helpdesk.conversations.tasks.deliver"
        tasks.deliver.run(*args)
    return [body for _id, _key, body in pigeon.sent]


def test_broker_down_the_reply_is_kept_the_sockets_hear_of_it_and_the_sweeper_sends_it(
    cast, chat, pigeon, broker, layer, settings, django_capture_on_commit_callbacks, caplog
):
    broker.stop()
    started = time.monotonic()
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        message = actions.post_reply(chat, by=cast.bob, body="sent while the broker was down")
    assert time.monotonic() - started < 10  # the agent's request is not held up for long
    # In the log the relays read: the sockets hear of it whatever the broker does.
    assert "message.created" in event_types(chat)
    assert Delivery.objects.get(message=message).status == DeliveryStatus.QUEUED
    assert any("the sweeper will" in r.getMessage() for r in caplog.records)
    assert pigeon.sent == []
    broker.start()
    assert sweep_and_send(pigeon, settings) == ["sent while the broker was down"]
    assert Delivery.objects.get(message=message).status == DeliveryStatus.SENT


def test_channel_layer_down_the_reply_is_still_queued_at_once(
    cast, chat, pigeon, broker, layer, settings, django_capture_on_commit_callbacks, caplog
):
    layer.stop()
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        message = actions.post_reply(chat, by=cast.bob, body="sent while the layer was down")
    assert caplog.records == []  # committing asks nothing of the channel layer any more
    delivery = Delivery.objects.get(message=message)
    assert drain(settings.DELIVERY_QUEUE) == [("helpdesk.conversations.tasks.deliver", [delivery.pk], None)]


def test_both_down_nothing_is_lost(cast, chat, pigeon, broker, layer, settings, django_capture_on_commit_callbacks):
    broker.stop()
    layer.stop()
    with django_capture_on_commit_callbacks(execute=True):
        message = actions.post_reply(chat, by=cast.bob, body="sent while Redis was down")
    assert Delivery.objects.get(message=message).status == DeliveryStatus.QUEUED
    broker.start()
    assert sweep_and_send(pigeon, settings) == ["sent while Redis was down"]
