"""One daphne process serves HTTP (Django, static files) and WebSockets (Channels)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from config.checks import require_services  # noqa: E402
from config.routing import websocket_application  # noqa: E402

# Fail at start-up, loudly, rather than serve with a broken database or channel layer.
require_services()


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Members' sockets come from our own pages only; the widget's socket, which other
        # sites open, is checked per bot against its allowed origins (config/routing.py).
        "websocket": websocket_application(),
    }
)
