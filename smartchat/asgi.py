"""ASGI entry point: Django for HTTP, Channels for the inbox and widget websockets.

Both sit behind one rule for the client's address and scheme: X-Forwarded-For and
X-Forwarded-Proto count only when the connection comes from a proxy in TRUSTED_PROXIES
(uvicorn's own middleware, which takes the right-most address no trusted proxy added). The
server itself runs with --no-proxy-headers, so this is the only place that reads them.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smartchat.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware  # noqa: E402

from helpdesk.realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProxyHeadersMiddleware(
    ProtocolTypeRouter({"http": django_asgi_app, "websocket": URLRouter(websocket_urlpatterns)}),
    trusted_hosts=settings.TRUSTED_PROXIES,
)

if settings.GC_FREEZE_AT_START:
    from smartchat.heap import freeze_startup_objects

    # Full garbage collections then skip what start-up made: shorter pauses of every socket.
    freeze_startup_objects()
