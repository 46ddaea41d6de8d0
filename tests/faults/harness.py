"""Private services and real processes for the fault tests: nothing here touches the shared ones.

A PostgreSQL cluster of its own (``initdb``/``pg_ctl`` from Debian's server package, in a
temporary directory, on a free port), a ``redis-server`` of its own on a free port, and the
product's processes as the Procfile starts them (uvicorn for ``web``, Celery for ``worker``),
each pointed at those two. The tests stop, restart and ``kill -9`` them.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from smartchat import webserver

ROOT = Path(__file__).resolve().parents[2]
WIDGET_ORIGIN = "https://shop.faults.test"
LAYER_PREFIX = "faults"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_port(port: int, timeout: float, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if not alive():
                raise RuntimeError(f"the process meant to listen on {port} exited") from None
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def pg_bindir() -> str | None:
    """Debian's PostgreSQL server binaries (initdb, pg_ctl), the newest version installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return str(Path(found[-1]).parent) if found else None


def missing_tools() -> list[str]:
    missing = []
    if pg_bindir() is None:
        missing.append("PostgreSQL server binaries (initdb, pg_ctl in /usr/lib/postgresql/*/bin)")
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    return missing


class PrivatePostgres:
    """A throwaway cluster: trust auth for ``postgres`` on 127.0.0.1, no fsync (it is a test)."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="smartchat-faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        # initdb refuses to run as root: then the cluster belongs to the postgres user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.dir, "postgres")
            os.chmod(self.dir, 0o755)

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> PrivatePostgres:
        self._run(
            f"{self.bindir}/initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"
        )
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off -c max_connections=200"
        self._run(f"{self.bindir}/pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(f"{self.bindir}/pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
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
        wait_port(self.port, 10, lambda: self.process.poll() is None)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


def product_env(database_url: str, redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment the product's processes run with here: the private services, no limits."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "REDIS_", "CELERY_", "RATE_LIMIT_", "EVENT_CATCHUP_", "DJANGO_"))
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "faults-" + "k" * 50,
            "CHANNEL_LAYER_PREFIX": LAYER_PREFIX,
            "SMARTCHAT_DATA_DIR": str(data_dir),
            "PYTHONPATH": str(ROOT),
            # Hundreds of messages a minute from one address: the limits are not under test.
            **{
                f"RATE_LIMIT_{name}": "off"
                for name in (
                    "WIDGET_SESSIONS_PER_ADDRESS",
                    "WIDGET_RESUMES_PER_VISITOR",
                    "WIDGET_RESUMES_PER_ADDRESS",
                    "WIDGET_CONVERSATIONS_PER_VISITOR",
                    "WIDGET_CONVERSATIONS_PER_ADDRESS",
                    "WIDGET_MESSAGES_PER_VISITOR",
                    "WIDGET_MESSAGES_PER_ADDRESS",
                    "API_PER_USER",
                )
            },
            **extra,
        }
    )
    return env


class Process:
    """One of the Procfile's processes, its output in a log file (shown when a test fails)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Process:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"  [{self.name}] {line}" for line in text[-lines:])


class Web(Process):
    """``web`` as the Procfile starts it: uvicorn serving smartchat.asgi:application."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "smartchat.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--lifespan",
            "off",
            "--no-proxy-headers",
            *webserver.ws_args(env),
        ]
        super().__init__(name, argv, env, log_dir)

    def start(self) -> Web:
        super().start()
        wait_port(self.port, 60, self.alive)
        return self


class Worker(Process):
    """``worker`` as the Procfile starts it: one Celery worker, solo pool."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "smartchat",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=info",
            f"--hostname={name}@faults",
        ]
        super().__init__(name, argv, env, log_dir)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the worker exited:\n{self.tail()}")
            if "ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the worker was not ready in {timeout} s:\n{self.tail()}")


def seed(env: dict[str, str]) -> dict:
    """The cast, written by the product's own services in a process on the private database."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.faults.seed"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def migrate(env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{done.stdout}\n{done.stderr}")
