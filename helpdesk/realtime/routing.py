"""Websocket URLs."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from integrations.widget.consumers import VisitorConsumer

from .consumers import InboxConsumer
from .reports import ReportsConsumer

websocket_urlpatterns = [
    # The inbox authenticates by session cookie, so only our own pages may open it.
    path("ws/inbox/", AllowedHostsOriginValidator(AuthMiddlewareStack(InboxConsumer.as_asgi()))),
    # The Reports page: "changed" when its live queue may have moved (helpdesk/realtime/reports.py).
    path("ws/reports/", AllowedHostsOriginValidator(AuthMiddlewareStack(ReportsConsumer.as_asgi()))),
    # The widget lives on customers' sites: it checks the channel's allowed origins itself.
    path("ws/widget/<str:public_key>/", VisitorConsumer.as_asgi()),
]
