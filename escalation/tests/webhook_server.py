"""A local chat-webhook server for tests: records every POST's JSON body and answers with the
statuses a test scripts, in order (200 once the script runs out). Listens on 127.0.0.1 only.

    server = WebhookServer(statuses=[500])
    ... post to server.url ...
    server.bodies  # [{"text": ..., "content": ...}, ...]
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookServer:
    def __init__(self, statuses: list[int] | None = None, redirect_to: str = "") -> None:
        self.bodies: list[dict] = []
        self.statuses = deque(statuses or [])
        self.redirect_to = redirect_to
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secret"

    def next_status(self) -> int:
        with self._lock:
            return self.statuses.popleft() if self.statuses else 200

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(owner: WebhookServer):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the standard library's name)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with owner._lock:
                owner.bodies.append(json.loads(raw or b"null"))
            if owner.redirect_to:
                self.send_response(302)
                self.send_header("Location", owner.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = owner.next_status()
            body = b"ok" if status < 400 else b"invalid_token"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler
