"""A real uvicorn server on the test database, in a background thread of the test process."""

from __future__ import annotations

import http.cookiejar
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from django.conf import settings
from django.test import Client

from smartchat import webserver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, *, log_level: str = "warning") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            "smartchat.asgi:application",
            host="127.0.0.1",
            port=self.port,
            log_level=log_level,
            lifespan="off",
            ws_max_size=65536,
            # As everywhere we start uvicorn: smartchat.asgi alone decides whom to believe,
            # and websockets as the Procfile serves them (smartchat/webserver.py).
            proxy_headers=False,
            **webserver.ws_config(),
            # A socket a failed test left open would keep the shutdown waiting past stop()'s
            # join, and its loop would go on receiving on the process's one channel layer
            # (channels_redis then refuses every other loop: "Two event loops…"). Cancel it.
            timeout_graceful_shutdown=3,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        # Longer than the Redis layer's 15 s socket timeout: a socket's BZPOPMIN cancelled at the
        # wrong moment can hang until then (redis/redis-py#2579). A server thread still running
        # would keep the process's one channel layer receiving on its loop, and the next test's
        # server could not receive at all ("Two event loops are trying to receive()").
        self.thread.join(timeout=30)


@contextmanager
def captured_logs(level: int = logging.INFO) -> Iterator[list[str]]:
    """The lines logged meanwhile in this process, tracebacks included, uvicorn's too.

    uvicorn's own loggers ("uvicorn", "uvicorn.access") don't propagate to the root logger
    that pytest's caplog listens on, so the handler is put on each of them.
    """
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.extend(self.format(record).splitlines())

    handler = Collect(level)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    # "uvicorn.error" has no handler of its own: it propagates to "uvicorn".
    heard = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.access")]
    loggers = [*heard, logging.getLogger("uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(min(logger.level or level, level))
    for logger in heard:
        logger.addHandler(handler)
    try:
        yield lines
    finally:
        for logger in heard:
            logger.removeHandler(handler)
        for logger, old in zip(loggers, levels, strict=True):
            logger.setLevel(old)


class ServerProcess:
    """uvicorn in its own process, on the same test database and Redis as the test process.

    ``env``: more settings for that process; ``app``: another ASGI application to serve.
    """

    def __init__(self, env: dict[str, str] | None = None, app: str = "smartchat.asgi:application") -> None:
        self.extra_env = env or {}
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        db = settings.DATABASES["default"]
        layer = settings.CHANNEL_LAYERS["default"]["CONFIG"]
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": settings.REDIS_URL,
            "CHANNEL_LAYER_PREFIX": layer["prefix"],
            "SECRET_KEY": settings.SECRET_KEY,
            "DB_CONN_MAX_AGE": "0",
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                self.app,
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-proxy-headers",
                *webserver.ws_args(env),
            ],
            env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("the second server did not start") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Session:
    """A signed-in employee, as a browser would hold it: session and CSRF cookies."""

    server: LiveServer
    sessionid: str
    csrftoken: str

    @classmethod
    def of(cls, server: LiveServer, employee) -> Session:
        client = Client()
        client.force_login(employee.user)
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(f"{server.url}/login/").read()
        csrftoken = next(c.value for c in jar if c.name == "csrftoken")
        return cls(server, client.cookies["sessionid"].value, csrftoken)

    @property
    def cookie(self) -> str:
        return f"sessionid={self.sessionid}; csrftoken={self.csrftoken}"

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.server.url + path,
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Cookie": self.cookie,
                "X-CSRFToken": self.csrftoken,
                "Referer": self.server.url + "/inbox/",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
