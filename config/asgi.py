"""One daphne process serves HTTP (Django, static files) and WebSockets (Channels)."""

import os
import threading

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from config.checks import require_services  # noqa: E402
from config.routing import websocket_application  # noqa: E402

# Fail at start-up, loudly, rather than serve with a broken database or channel layer.
require_services()


def _warm_embedder() -> None:
    # Importing torch and loading MiniLM takes seconds; without this the first customer after
    # every start waits for it (and, under load, everyone queued behind them: measured by
    # `manage.py bench_chat`). In a thread, so the server is up meanwhile.
    from django.conf import settings

    from knowledge.embeddings import LOCAL_MINILM, get_embedder

    if settings.EMBEDDING_MODEL == LOCAL_MINILM:
        get_embedder(LOCAL_MINILM).embed(["warm up"])


threading.Thread(target=_warm_embedder, name="warm-embedder", daemon=True).start()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # Members' sockets come from our own pages only; the widget's socket, which other
        # sites open, is checked per bot against its allowed origins (config/routing.py).
        "websocket": websocket_application(),
    }
)
