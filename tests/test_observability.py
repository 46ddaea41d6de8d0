"""Observability (docs/operations.md): /metrics scraped for real, /readyz, JSON logs with the request id.

The counters are read from /metrics itself, before and after real actions: a visitor writing
over the widget socket of a real server, a real worker running a task queued by a real request.
The multiprocess test runs the web and the worker as separate processes sharing a metrics
directory, as docker-compose does.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import logging.config
import os
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml
from asgiref.sync import sync_to_async
from celery.contrib.testing.worker import start_worker
from django.db.migrations.recorder import MigrationRecorder
from django_guid import clear_guid, set_guid
from prometheus_client.parser import text_string_to_metric_families

from helpdesk.conversations import adapters
from helpdesk.conversations.models import Conversation, Status
from helpdesk.observability import logs, multiprocess, readiness
from smartchat.celery import app
from tests.conftest import login
from tests.delivery_kit import Pigeon, channel_of, conversation_on
from tests.live import ServerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "scrape-me-" + "x" * 20
TIMEOUT = 10


# --- helpers -------------------------------------------------------------------------------------


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """{(sample name, labels): value} of an exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def exported_names(text: str) -> set[str]:
    """Every family and sample name /metrics exports (a histogram's _bucket/_sum/_count too)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


def scrape(client) -> str:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def scrape_url(base: str, token: str = TOKEN) -> str:
    request = urllib.request.Request(f"{base}/metrics", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return response.read().decode()


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_IPS = []
    return settings


def json_handler() -> tuple[logging.Handler, io.StringIO]:
    """A handler built from the production LOG_FORMAT=json configuration, writing to a buffer."""
    config = logs.logging_config(log_format="json", level="INFO")
    stream = io.StringIO()
    configurator = logging.config.DictConfigurator(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": config["filters"],
            "formatters": config["formatters"],
            "handlers": {"buffer": {**config["handlers"]["console"], "stream": stream}},
        }
    )
    configurator.configure()
    return logging._handlers["buffer"], stream


def json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


# --- who may read /metrics -----------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_is_not_found_until_a_token_or_an_allow_list_is_configured(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}).status_code == 404


@pytest.mark.django_db
def test_metrics_refuses_a_wrong_token_and_takes_the_right_one(client, metrics_on):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer " + "é" * 5}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.django_db
def test_metrics_takes_an_allowed_address_and_refuses_others(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert client.get("/metrics").status_code == 403  # the test client is 127.0.0.1
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    # A forwarded header counts only from TRUSTED_PROXIES (smartchat.asgi), never here.
    assert client.get("/metrics", headers={"X-Forwarded-For": "10.1.2.3"}).status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="not-an-address").status_code == 403
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]
    assert client.get("/metrics").status_code == 200


@pytest.mark.postgres
def test_the_allow_list_honours_trusted_proxies_over_a_real_server(transactional_db):
    """Through smartchat.asgi: the proxy's X-Forwarded-For names the client, anyone else's is ignored."""
    env = {"METRICS_ALLOWED_IPS": "203.0.113.7", "TRUSTED_PROXIES": "127.0.0.1"}
    server = ServerProcess(env=env).start()
    try:
        request = urllib.request.Request(f"{server.url}/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            assert response.status == 200
        request = urllib.request.Request(f"{server.url}/metrics", headers={"X-Forwarded-For": "198.51.100.1"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=TIMEOUT)
        assert refused.value.code == 403
    finally:
        server.stop()


@pytest.mark.django_db
def test_metrics_answers_without_the_database_figures_when_the_database_fails(client, metrics_on, monkeypatch):
    from helpdesk.observability.collectors import DatabaseCollector

    def broken(self):
        raise RuntimeError("database away")

    monkeypatch.setattr(DatabaseCollector, "_queues", broken)
    text = scrape(client)
    assert value(text, "smartchat_database_collector_up") == 0
    assert "smartchat_queue_conversations" not in text


@pytest.mark.django_db
def test_an_unreadable_metrics_directory_is_a_503_not_a_500(client, metrics_on, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    # A file in prometheus_client's layout (bytes used, then length, key, padding, value) whose key is not JSON.
    entry = struct.pack("i", 8) + b"notjson!" + b"    " + struct.pack("d", 1.0)
    data = struct.pack("i", 8 + len(entry)) + b"\0" * 4 + entry
    (tmp_path / "counter_somewhere-1.db").write_bytes(data.ljust(4096, b"\0"))
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503


@pytest.mark.django_db
def test_a_content_length_that_is_no_number_is_answered_by_the_view_not_a_500(client):
    # django-prometheus's own middleware parses it with int() before any view runs.
    response = client.generic("POST", "/readyz", "", CONTENT_LENGTH="abc")
    assert response.status_code == 405


# --- what /metrics counts ------------------------------------------------------------------------


@pytest.mark.django_db
def test_requests_are_timed_by_route(client, metrics_on):
    before = scrape(client)
    assert client.get("/healthz").status_code == 200
    after = scrape(client)
    name = "django_http_requests_latency_seconds_by_view_method_count"
    assert value(after, name, view="healthz", method="GET") == value(before, name, view="healthz", method="GET") + 1


@pytest.mark.django_db
def test_the_queue_per_team_and_its_longest_wait_come_from_the_database(client, cast, metrics_on):
    waiting = Conversation.objects.filter(
        company=cast.acme, team=cast.sales, status=Status.OPEN, assignee__isnull=True, deleted_at__isnull=True
    ).count()
    assert waiting >= 1  # the cast's visitor, nobody online to take it
    text = scrape(client)
    labels = {"company_id": str(cast.acme.pk), "team_id": str(cast.sales.pk), "team": "Sales"}
    assert value(text, "smartchat_queue_conversations", **labels) == waiting
    assert value(text, "smartchat_queue_longest_wait_seconds", **labels) >= 0
    # Another company's queue is its own series.
    assert not any(
        name == "smartchat_queue_conversations" and ("company_id", str(cast.globex.pk)) in labels_
        for name, labels_ in samples(text)
    )


@pytest.mark.django_db
def test_deliveries_are_counted_by_status_from_the_outbox(client, cast, metrics_on, monkeypatch):
    from helpdesk.conversations import actions

    adapter = Pigeon()
    monkeypatch.setitem(adapters._registry, adapter.kind, adapter)
    chat = conversation_on(channel_of(adapter, cast.acme, cast.sales))
    before = scrape(client)
    actions.post_reply(chat, by=cast.alice, body="On its way")
    after = scrape(client)
    queued = value(before, "smartchat_deliveries", status="queued", channel_kind="pigeon")
    assert value(after, "smartchat_deliveries", status="queued", channel_kind="pigeon") == queued + 1
    assert value(after, "smartchat_deliveries", status="failed", channel_kind="pigeon") == 0


@pytest.mark.redis
def test_a_visitor_on_a_real_socket_moves_the_socket_gauge_messages_and_events(
    asgi_server, redis_layer, tcast, settings
):
    settings.METRICS_TOKEN = TOKEN
    from tests.test_live_server import next_of, open_visitor, start_widget_session

    async def visit() -> tuple[str, str, str]:
        before = await sync_to_async(scrape_url)(asgi_server.url)
        token = await sync_to_async(start_widget_session)(asgi_server, tcast.widget)
        async with await open_visitor(asgi_server, tcast.widget, token) as visitor:
            await visitor.send(json.dumps({"type": "message", "body": "Is it in stock?", "client_id": "b2" * 16}))
            await next_of(visitor, "ack")
            deadline = time.monotonic() + TIMEOUT
            while True:  # the relay reads the committed event a moment after the ack
                during = await sync_to_async(scrape_url)(asgi_server.url)
                published = dict(name="smartchat_events_published_total", type="message.created")
                if value(during, **published) > value(before, **published):
                    break
                assert time.monotonic() < deadline, "the relay never published the message's event"
                await asyncio.sleep(0.1)
        deadline = time.monotonic() + TIMEOUT
        while True:  # the server notices the close a moment later
            after = await sync_to_async(scrape_url)(asgi_server.url)
            if value(after, "smartchat_sockets_open", kind="widget") == value(
                before, "smartchat_sockets_open", kind="widget"
            ):
                return before, during, after
            assert time.monotonic() < deadline, "the widget socket's close was not counted"
            await asyncio.sleep(0.1)

    before, during, after = asyncio.run(visit())
    assert (
        value(during, "smartchat_sockets_open", kind="widget")
        == value(before, "smartchat_sockets_open", kind="widget") + 1
    )
    assert value(after, "smartchat_sockets_opened_total", kind="widget") == (
        value(before, "smartchat_sockets_opened_total", kind="widget") + 1
    )
    messages_in = dict(name="smartchat_messages_total", direction="in", channel_kind="widget")
    assert value(during, **messages_in) == value(before, **messages_in) + 1
    assert value(during, "smartchat_events_published_total", type="message.created") >= (
        value(before, "smartchat_events_published_total", type="message.created") + 1
    )
    assert value(during, "smartchat_event_publish_lag_seconds_count") > value(
        before, "smartchat_event_publish_lag_seconds_count"
    )
    assert value(during, "smartchat_event_last_published_timestamp_seconds") >= time.time() - 60


# --- /readyz -------------------------------------------------------------------------------------


@pytest.fixture
def fresh_readiness(monkeypatch):
    monkeypatch.setattr(readiness, "_migrated", False)


@pytest.mark.django_db
def test_readyz_is_ready_when_the_database_redis_and_migrations_are(client, fresh_readiness):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["ready"] is True
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["migrations"] == "ok"


@pytest.mark.django_db
def test_readyz_is_503_with_a_reason_when_redis_does_not_answer(client, settings, fresh_readiness):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["checks"]["redis"].startswith("error:")
    assert "redis does not answer" in body["reason"]


@pytest.mark.django_db
def test_readyz_is_503_while_a_migration_is_not_applied(client, fresh_readiness):
    last = MigrationRecorder.Migration.objects.filter(app="conversations").order_by("-applied", "-id").first()
    last.delete()  # rolled back with the test
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == "pending"
    assert f"conversations.{last.name}" in response.json()["reason"]


# --- logs and the request id ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_sane_request_id_is_kept_and_returned_and_lands_in_the_json_log_line(client, metrics_on):
    handler, stream = json_handler()
    logging.getLogger().addHandler(handler)
    try:
        given = str(uuid.uuid4())
        response = client.get("/metrics", headers={"X-Request-ID": given})  # no token: 403, logged
    finally:
        logging.getLogger().removeHandler(handler)
    assert response.status_code == 403
    assert response["X-Request-ID"] == given
    lines = [line for line in json_lines(stream) if line["logger"] == "django.request"]
    assert lines, stream.getvalue()
    assert lines[0]["request_id"] == given
    assert lines[0]["level"] == "WARNING"
    assert {"time", "message", "pid"} <= set(lines[0])
    assert "request" not in lines[0]  # the request's repr would carry its query string


@pytest.mark.django_db
def test_an_insane_request_id_is_replaced_and_one_is_made_when_missing(client):
    for given in ("<script>alert(1)</script>", "x" * 500, "not-a-uuid"):
        response = client.get("/healthz", headers={"X-Request-ID": given})
        assert response["X-Request-ID"] != given
        assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    first, second = client.get("/healthz")["X-Request-ID"], client.get("/healthz")["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


@pytest.mark.redis
def test_the_request_id_travels_into_the_task_the_request_queued_and_the_worker_logs_it(
    client, tcast, settings, monkeypatch, redis_layer
):
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    settings.DELIVERY_QUEUE = f"test-obs-{os.getpid()}-{time.monotonic_ns()}"
    adapter = Pigeon()
    monkeypatch.setitem(adapters._registry, adapter.kind, adapter)
    chat = conversation_on(channel_of(adapter, tcast.acme, tcast.sales))
    login(client, tcast.alice)
    given = str(uuid.uuid4())
    handler, stream = json_handler()
    # On the task logger itself: the worker's start (django.setup() again, in Celery's Django
    # fixup) configures logging anew, and the root logger's handlers are replaced.
    tasks_log = logging.getLogger("smartchat.tasks")
    tasks_log.addHandler(handler)
    try:
        # The reply's delivery task is queued on commit, during this request.
        response = client.post(
            f"/api/v1/conversations/{chat.pk}/reply",
            {"body": "On its way"},
            content_type="application/json",
            headers={"X-Request-ID": given},
        )
        assert response.status_code == 201, response.content
        clear_guid()  # the test client's request is over; only the task's headers carry it on
        with start_worker(app, pool="solo", perform_ping_check=False, queues=[settings.DELIVERY_QUEUE]):
            deadline = time.monotonic() + 30
            while not adapter.sent:
                assert time.monotonic() < deadline, "the worker did not send the reply"
                time.sleep(0.1)
    finally:
        tasks_log.removeHandler(handler)
    started = [line for line in json_lines(stream) if line["logger"] == "smartchat.tasks"]
    assert any("helpdesk.conversations.tasks.deliver" in line["message"] for line in started), started
    assert all(line["request_id"] == given for line in started if "deliver" in line["message"])


# --- a web process and a worker process, one metrics directory -----------------------------------


class WorkerProcess:
    """``celery -A smartchat worker`` as the Procfile starts it, on a queue of this test's own."""

    def __init__(self, queue: str, env: dict[str, str]) -> None:
        self.queue, self.env = queue, env
        self.log = ""

    def __enter__(self) -> WorkerProcess:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "smartchat",
                "worker",
                "--pool=solo",
                "-Q",
                self.queue,
                "--loglevel=INFO",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.log = self.process.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.log = self.process.communicate()[0]


@pytest.mark.redis
@pytest.mark.postgres
def test_a_task_failing_in_the_worker_process_is_counted_on_the_webs_metrics(
    transactional_db, redis_layer, settings, tmp_path
):
    shared = str(tmp_path / "metrics")
    queue = f"test-obs-worker-{os.getpid()}-{time.monotonic_ns()}"
    env = {"PROMETHEUS_MULTIPROC_DIR": shared, "METRICS_TOKEN": TOKEN, "LOG_FORMAT": "json"}
    server = ServerProcess(env=env).start()
    db = settings.DATABASES["default"]
    worker_env = {
        **os.environ,
        **env,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "CHANNEL_LAYER_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
    }
    task = "helpdesk.conversations.tasks.deliver"
    failures = "smartchat_celery_task_failures_total"
    request_id = uuid.uuid4().hex
    try:
        before = value(scrape_url(server.url), failures, task=task)
        with WorkerProcess(queue, worker_env) as worker:
            set_guid(request_id)  # as a request would have it when it queues the task
            try:
                app.send_task(task, args=["not-an-id"], queue=queue)  # the worker's query raises
            finally:
                clear_guid()
            deadline = time.monotonic() + 60
            while value(scrape_url(server.url), failures, task=task) < before + 1:
                assert worker.process.poll() is None, "the worker died"
                assert time.monotonic() < deadline, "the worker's failure never reached the web's /metrics"
                time.sleep(0.3)
        text = scrape_url(server.url)
        assert value(text, failures, task=task) == before + 1
    finally:
        server.stop()
    # The worker logged JSON lines, the failure among them with the id of the "request".
    lines = [json.loads(line) for line in worker.log.splitlines() if line.startswith("{")]
    assert lines, worker.log
    failed = [line for line in lines if line["logger"] == "celery.app.trace" and line["level"] == "ERROR"]
    assert failed and failed[0]["request_id"] == request_id, worker.log
    assert all("data" not in line for line in lines)  # a task's arguments stay out of the logs
    # Each process wrote files of its own, named by host and pid.
    assert any(name.name.startswith("counter_") for name in Path(shared).iterdir())


def test_the_live_gauges_of_this_hosts_dead_processes_are_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = multiprocess._HOST
    files = {
        "dead": tmp_path / f"gauge_livesum_{host}-{dead.stdout.strip()}.db",
        "alive": tmp_path / f"gauge_livesum_{host}-{os.getpid()}.db",
        "elsewhere": tmp_path / "gauge_livesum_another-host-1.db",
        "counter": tmp_path / f"counter_{host}-{dead.stdout.strip()}.db",
    }
    for path in files.values():
        path.write_bytes(b"")
    multiprocess.forget_dead_processes()
    assert {name for name, path in files.items() if path.exists()} == {"alive", "elsewhere", "counter"}


# --- the example dashboards and alerts -----------------------------------------------------------

METRIC = re.compile(r"\b((?:smartchat|django)_[a-z0-9_]+)\b")


def names_in_expressions(expressions: list[str]) -> set[str]:
    return {name for expression in expressions for name in METRIC.findall(expression)}


def dashboard_expressions() -> list[str]:
    board = json.loads((ROOT / "deploy/grafana/smartchat.json").read_text())
    found = []

    def walk(panels):
        for panel in panels:
            found.extend(target["expr"] for target in panel.get("targets", []) if "expr" in target)
            walk(panel.get("panels", []))

    walk(board["panels"])
    for variable in board.get("templating", {}).get("list", []):
        if isinstance(variable.get("query"), str):
            found.append(variable["query"])
        elif isinstance(variable.get("query"), dict):
            found.append(variable["query"].get("query", ""))
    return found


def alert_rules() -> list[dict]:
    document = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_deploy_files_parse_and_say_what_they_must():
    rules = alert_rules()
    assert {
        "SmartchatEventsStalled",
        "SmartchatEventLagGrowing",
        "SmartchatQueueGrowing",
        "SmartchatDeliveriesFailing",
        "SmartchatTasksFailing",
    } <= {rule["alert"] for rule in rules}
    assert all(rule["expr"] and rule["labels"]["severity"] and rule["annotations"]["summary"] for rule in rules)
    scrape_config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = scrape_config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert "authorization" in job
    assert "alerts.yml" in scrape_config["rule_files"]
    assert len(dashboard_expressions()) >= 8


@pytest.mark.django_db
def test_every_metric_the_dashboard_and_the_alerts_use_is_one_metrics_exports(client, cast, metrics_on):
    client.get("/healthz")  # a request of a known route, so the per-route series exist
    exported = exported_names(scrape(client))
    used = names_in_expressions(dashboard_expressions() + [rule["expr"] for rule in alert_rules()])
    assert used, "no metric names found in the deploy files"
    assert used - exported == set(), f"used but not exported: {sorted(used - exported)}"


def test_the_compose_file_shares_one_metrics_directory_between_web_and_worker():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app_env = compose["x-app"]["environment"]
    assert app_env["PROMETHEUS_MULTIPROC_DIR"] == "/var/lib/smartchat/metrics"
    assert app_env["LOG_FORMAT"] == "${LOG_FORMAT:-json}"
    for service in ("web", "worker", "poller", "beat"):
        assert "metrics:/var/lib/smartchat/metrics" in compose["services"][service]["volumes"], service
    # In memory, emptied when no container uses it any more (a full restart), kept otherwise.
    assert compose["volumes"]["metrics"]["driver_opts"]["type"] == "tmpfs"
    assert "uid=10001" in compose["volumes"]["metrics"]["driver_opts"]["o"]
    assert "useradd --create-home --uid 10001" in (ROOT / "Dockerfile").read_text()
