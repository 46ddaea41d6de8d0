"""What can be checked of the deployment without a Docker engine: the files parse and point at real things."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest
import yaml
from django.urls import reverse
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from websockets.asyncio.client import connect

from smartchat import webserver
from smartchat.celery import app as celery_app
from tests.live import free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = ("migrate", "web", "worker", "beat")
REQUIREMENTS = (ROOT / "requirements.txt").read_text().lower()


def compose_env(service: str) -> dict[str, str]:
    """The service's environment as compose would resolve it with only SECRET_KEY given."""
    given = {"SECRET_KEY": "x" * 60}

    def resolve(value: str) -> str:
        def one(match: re.Match) -> str:
            name, op, default = match.group(1), match.group(2), match.group(3) or ""
            if name in given:
                return given[name]
            if op == ":?":
                raise AssertionError(f"{name} is required")
            return default

        return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, value)

    return {key: resolve(str(value)) for key, value in COMPOSE["services"][service]["environment"].items()}


def test_compose_has_the_services_of_the_architecture():
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(COMPOSE["services"])
    for name in APP_SERVICES:
        service = COMPOSE["services"][name]
        env = compose_env(name)
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["DEBUG"] == "false"
        assert service["build"] == "."


def test_compose_refuses_to_start_without_a_secret_key():
    raw = COMPOSE["services"]["web"]["environment"]["SECRET_KEY"]
    assert raw.startswith("${SECRET_KEY:?")


def test_the_commands_in_compose_and_procfile_exist_in_the_project():
    commands = [COMPOSE["services"][name]["command"] for name in APP_SERVICES]
    commands += [shlex.split(line.split(":", 1)[1]) for line in (ROOT / "Procfile").read_text().splitlines() if line]
    for argv in commands:
        if argv[0] == "python" and argv[1] == "-m":
            argv = argv[2:]
        program = argv[0]
        if program == "uvicorn":
            module, attribute = next(a for a in argv[1:] if ":" in a).split(":")
            assert callable(getattr(import_module(module), attribute))
            assert "uvicorn" in REQUIREMENTS
        elif program == "celery":
            assert argv[1:3] == ["-A", "smartchat"] and argv[3] in ("worker", "beat")
            assert "celery" in REQUIREMENTS
        elif program == "python":
            assert argv[1] == "manage.py" and (ROOT / "manage.py").exists()
        else:
            pytest.fail(f"unknown program in a deployment command: {argv}")


def dockerfile_cmd() -> list[str]:
    """The image's CMD as exec'd: ``sh -c "exec uvicorn ..."`` unwrapped to uvicorn's arguments."""
    dockerfile = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    argv = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1))
    if argv[:2] == ["sh", "-c"]:
        (script,) = argv[2:]
        argv = shlex.split(script)
        assert argv[0] == "exec", "the shell must exec uvicorn (PID 1 gets the container's signals)"
        argv = argv[1:]
    return argv


def uvicorn_commands() -> dict[str, list[str]]:
    """Every place that starts the web server, as an argument list (variables left as written)."""
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    return {
        "Dockerfile": dockerfile_cmd(),
        "docker-compose.yml": COMPOSE["services"]["web"]["command"],
        "Procfile": shlex.split(procfile["web"]),
    }


def flag_value(argv: list[str], flag: str) -> str:
    """The value given to ``flag`` (``--flag value`` or ``--flag=value``); fails if it is missing or repeated."""
    values = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]
    values += [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"{flag}=")]
    assert len(values) == 1, f"{flag} given {len(values)} times in {argv}"
    return values[0]


def test_no_uvicorn_we_start_believes_forwarded_headers_itself():
    # The application believes X-Forwarded-* from TRUSTED_PROXIES only (smartchat/asgi.py);
    # uvicorn's own --proxy-headers would believe them from its --forwarded-allow-ips.
    for where, argv in uvicorn_commands().items():
        assert "uvicorn" in argv[:3], where
        assert "--no-proxy-headers" in argv, where
        assert not any(arg.startswith("--forwarded-allow-ips") for arg in argv), where
    for path in ("_live_common.py", "_live_raw.py"):  # the live chat bench's servers and its raw loop
        assert '"--no-proxy-headers"' in (ROOT / "bench" / path).read_text(), path
    assert "proxy_headers=False" in (ROOT / "tests" / "live.py").read_text()


def test_every_uvicorn_we_start_serves_websockets_uncompressed_unless_told():
    # permessage-deflate keeps zlib state per open socket (~48 KiB); our frames are small JSON.
    # Each command names the implementation and reads WEB_WS_DEFLATE, off when unset.
    for where, argv in uvicorn_commands().items():
        assert flag_value(argv, "--ws") == webserver.WS_IMPLEMENTATION, where
        assert flag_value(argv, "--ws-per-message-deflate") == "${WEB_WS_DEFLATE:-false}", where
    assert "ENV WEB_WS_DEFLATE=false" in (ROOT / "Dockerfile").read_text()
    assert "WEB_WS_DEFLATE=false" in (ROOT / ".env.example").read_text().splitlines()
    # The bench and the tests' servers start uvicorn from Python, with the same flags from webserver.
    for path in ("tests/live.py", "tests/faults/harness.py", "tests/test_relay.py"):
        assert "webserver.ws_args(env)" in (ROOT / path).read_text(), path
    assert "**webserver.ws_config()" in (ROOT / "tests" / "live.py").read_text()
    for path in ("_live_common.py", "_live_raw.py"):  # the live chat bench's servers and its raw loop
        assert (ROOT / "bench" / path).read_text().count("*ws_args(") == 1, path
    driver = (ROOT / "bench" / "_live_bench.py").read_text()
    assert "raw_limits(args.agents, max(args.idle_sockets, 1), flags)" in driver
    assert "*ws_flags]" in (ROOT / "bench" / "_fanout.py").read_text()  # the bare socket: the same flags


@pytest.mark.parametrize(
    ("value", "deflate"),
    [(None, False), ("", False), ("false", False), ("0", False), ("off", False), ("true", True), ("1", True)],
)
def test_web_ws_deflate_reads_as_uvicorn_would(value, deflate):
    environ = {} if value is None else {"WEB_WS_DEFLATE": value}
    assert webserver.ws_deflate(environ) is deflate
    assert webserver.ws_args(environ) == ["--ws", "websockets-sansio", "--ws-per-message-deflate", str(deflate).lower()]
    assert webserver.ws_config(environ) == {"ws": "websockets-sansio", "ws_per_message_deflate": deflate}


def test_web_ws_deflate_refuses_what_uvicorn_would_refuse():
    with pytest.raises(ValueError, match="WEB_WS_DEFLATE"):
        webserver.ws_deflate({"WEB_WS_DEFLATE": "maybe"})


def procfile_web_extensions(environ: dict[str, str]) -> str | None:
    """The Procfile's web line run by a shell (bench/_hello_asgi.py for the app): the extensions
    its websocket handshake answers to a client that offers permessage-deflate, as browsers do."""
    line = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)["web"]
    line = line.strip().replace("python ", f"{shlex.quote(sys.executable)} ", 1)
    line = line.replace("smartchat.asgi:application", "--app-dir bench _hello_asgi:app")
    port = free_port()
    env = {**os.environ, "SMARTCHAT_HOST": "127.0.0.1", "SMARTCHAT_PORT": str(port), "WEB_CONCURRENCY": "1"}
    env.pop("WEB_WS_DEFLATE", None)
    server = subprocess.Popen(["sh", "-c", f"exec {line}"], cwd=ROOT, env={**env, **environ})

    async def handshake() -> str | None:
        for _ in range(200):
            try:
                async with connect(f"ws://127.0.0.1:{port}/", proxy=None, open_timeout=5) as ws:
                    return ws.response.headers.get("Sec-WebSocket-Extensions")
            except OSError:
                assert server.poll() is None, "the Procfile's web command exited"
                await asyncio.sleep(0.1)
        pytest.fail("the Procfile's web command did not listen")

    try:
        return asyncio.run(handshake())
    finally:
        server.terminate()
        server.wait(10)


def test_the_procfiles_web_server_offers_no_compression_unless_told():
    # The flag as the shell passes it to uvicorn: a browser's offer of permessage-deflate is
    # declined, and accepted once WEB_WS_DEFLATE=true.
    assert procfile_web_extensions({}) is None
    assert procfile_web_extensions({"WEB_WS_DEFLATE": "true"}).startswith("permessage-deflate")


def test_the_documented_trusted_proxies_are_the_compose_network():
    subnet = COMPOSE["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert subnet == "${SMARTCHAT_SUBNET:-172.30.241.0/24}"
    assert "TRUSTED_PROXIES=172.30.241.0/24" in (ROOT / ".env.example").read_text()
    assert compose_env("web")["TRUSTED_PROXIES"] == ""  # nothing trusted unless .env says so


def locked(name: str) -> dict[str, tuple[str, frozenset[str]]]:
    """A pip-compile lock: each package's exact version and its hashes. Fails on anything else."""
    packages = {}
    text = (ROOT / name).read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *options = line.split()
        requirement = Requirement(spec)
        (pin,) = requirement.specifier
        assert pin.operator == "==", f"{name}: not pinned exactly: {line}"
        hashes = frozenset(o.removeprefix("--hash=") for o in options if o.startswith("--hash=sha256:"))
        assert hashes and len(hashes) == len(options), f"{name}: {spec} without hashes, or with other options"
        packages[canonicalize_name(requirement.name)] = (pin.version, hashes)
    return packages


def top_level_pins(name: str) -> dict[str, str]:
    """The pins of a requirements .in file, following its -r includes (-c constraints are not pins)."""
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins |= top_level_pins(line.split()[1])
        elif line and not line.startswith("-c "):
            requirement = Requirement(line)
            (pin,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = pin.version
    return pins


def test_the_dockerfile_installs_the_locked_requirements_and_collects_static():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.txt" in dockerfile and "pip install -r requirements.txt" in dockerfile
    assert "collectstatic" in dockerfile
    assert locked("requirements.txt")


@pytest.mark.parametrize(
    ("source", "lock"),
    [
        ("requirements.in", "requirements.txt"),
        ("requirements-dev.in", "requirements-dev.txt"),
        ("requirements-assets.in", "requirements-assets.txt"),
    ],
)
def test_each_lock_holds_its_inputs_pins_with_every_package_hashed(source, lock):
    # Pinned and hashed throughout, so pip installs in hash-checking mode: nothing unlisted or altered gets
    # in. An edited .in without `make lock` shows here as a version the lock does not hold.
    packages = locked(lock)
    for name, version in top_level_pins(source).items():
        assert name in packages, f"{name} is in {source} but not in {lock}: run make lock"
        assert packages[name][0] == version, (
            f"{name}=={version} in {source}, {packages[name][0]} in {lock}: run make lock"
        )


def test_the_browser_libraries_are_pinned_with_their_integrity_and_installed_as_pinned():
    # package.json pins exact versions, the lock holds every tarball's sha512 (npm ci checks it) and
    # names no registry (npm uses the machine's), and what the set-up copied into static/vendor/ is
    # byte for byte what scripts/assets.sha256 says; the Dockerfile runs the same step.
    package = json.loads((ROOT / "package.json").read_text())
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in package["dependencies"].values())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    for name, entry in lock["packages"].items():
        if name:
            assert entry["integrity"].startswith("sha512-") and "resolved" not in entry, name
    assert lock["packages"]["node_modules/chart.js"]["version"] == package["dependencies"]["chart.js"]
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_assets.py")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr + " (run ./scripts/test or ./scripts/start once)"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ensure_assets" in dockerfile and "COPY --from=assets /build/static/vendor static/vendor" in dockerfile
    for script in ("start", "test"):
        assert "ensure_assets" in (ROOT / "scripts" / script).read_text()


def test_the_test_environment_installs_exactly_the_runtime_lock_and_more():
    runtime, dev = locked("requirements.txt"), locked("requirements-dev.txt")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert (ROOT / "requirements-dev.in").read_text().startswith("-c requirements.txt\n")


def test_the_settings_accept_the_compose_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(compose_env("web"), SMARTCHAT_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="smartchat.settings")
    # The metrics volume's path is the container's: here a directory of the test's own.
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    probe = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.DATABASES['default']['HOST'], s.CHANNEL_LAYERS['default']['CONFIG']['hosts'], s.DEBUG]))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    host = {"address": "redis://redis:6379/0", "socket_timeout": 15, "max_connections": 1000}
    assert json.loads(result.stdout) == ["postgres", [host], False]


def test_every_task_the_scheduler_sends_is_registered_in_the_worker():
    celery_app.loader.import_default_modules()  # what a worker does as it boots: autodiscovery
    scheduled = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    assert scheduled and scheduled <= set(celery_app.tasks)


@pytest.mark.django_db
def test_the_health_check_reports_database_and_channel_layer(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json() == {"ok": True, "database": "ok", "channel_layer": "ok"}
