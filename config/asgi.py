"""One daphne process serves HTTP (Django, static files) and WebSockets (Channels)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from chat.recovery import turn_recover_start  # noqa: E402
from config.checks import require_services  # noqa: E402
from config.routing import websocket_application  # noqa: E402

# Fail at start-up, loudly, rather than serve with a broken database or channel layer.
require_services()


routes = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Members' sockets come from our own pages only; the widget's socket, which other
        # sites open, is checked per bot against its allowed origins (config/routing.py).
        "websocket": websocket_application(),
    }
)


async def application(scope, receive, send):
    # Daphne sends no lifespan events: the first request this process serves (serve's and the
    # container's health checks come first) starts its sweep for answers a crash cut off.
    turn_recover_start()
    return await routes(scope, receive, send)
