"""smartchat.asgi's application plus one websocket route that answers with the client's address.

Served by tests/test_proxies.py in a server process of its own: the probe sits behind exactly
what the inbox and widget sockets sit behind, and reports what ``socket_client_ip`` sees.
"""

# isort: off
from smartchat.asgi import application  # first: it sets Django up
from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path

from helpdesk.events.audit import socket_client_ip
from helpdesk.realtime.routing import websocket_urlpatterns

# isort: on

__all__ = ["application"]


class AddressProbe(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=socket_client_ip(self.scope) or "")


# The router of smartchat.asgi holds this very list, so the route joins the real application.
websocket_urlpatterns.append(path("ws/test-address/", AddressProbe.as_asgi()))
