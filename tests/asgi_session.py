"""A ``requests`` session that serves every request with an ASGI app, from the calling thread.

``async_to_sync`` runs the app, so Django's sync views come back to this thread: they use the
test's database connection and see (and roll back with) the test's transaction, as Django's own
test clients do. The app is the real one (``smartchat.asgi.application``), middleware and all.
"""

from __future__ import annotations

import asyncio
import io
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from asgiref.sync import async_to_sync
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

CLIENT = ("127.0.0.1", 50000)  # uvicorn gives the app an address; so do we


class ASGIAdapter(requests.adapters.HTTPAdapter):
    def __init__(self, app) -> None:
        super().__init__()
        self.app = app

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        parts = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        headers = [(b"host", (parts.netloc or "testserver").encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": parts.scheme,
            "path": unquote(parts.path),
            "raw_path": parts.path.encode(),
            "root_path": "",
            "query_string": parts.query.encode(),
            "headers": headers,
            "client": CLIENT,
            "server": (parts.hostname or "testserver", parts.port or 80),
        }
        start: dict = {}
        chunks: list[bytes] = []

        async def serve() -> None:
            done = asyncio.Event()
            sent = False

            async def receive():
                nonlocal sent
                if not sent:
                    sent = True
                    return {"type": "http.request", "body": body, "more_body": False}
                await done.wait()  # Django listens for a disconnect while it answers
                return {"type": "http.disconnect"}

            async def send(message):
                if message["type"] == "http.response.start":
                    start.update(message)
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body"):
                        done.set()

            await self.app(scope, receive, send)

        # As Django's test clients: closing "old" connections would close the test's transaction.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            async_to_sync(serve)()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

        raw = urllib3.HTTPResponse(
            body=io.BytesIO(b"".join(chunks)),
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])],
            status=start["status"],
            version=11,
            preload_content=False,
            request_method=request.method,
        )
        return self.build_response(request, raw)

    def close(self) -> None:
        pass


def asgi_session(app) -> requests.Session:
    session = requests.Session()
    session.mount("http://", ASGIAdapter(app))
    return session
