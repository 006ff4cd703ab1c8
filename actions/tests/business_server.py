"""A local HTTP server standing in for the business's API in tests: answers each request with
what a test scripts (a status and a JSON body, a delay, a huge body) and records every request
(method, path, query, headers, body). Listens on 127.0.0.1 only.

    server = BusinessServer()
    server.answer("/orders/1234", {"id": "1234", "status": "shipped"})
    server.answer("/orders/9999", {"error": "no such order"}, status=404)
    ... action_run(...) against server.url + "/orders/{order_id}" ...
    server.requests[0].headers["X-Handoff-Signature"]
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes


@dataclass
class Script:
    status: int = 200
    body: bytes = b"{}"
    delay: float = 0.0
    content_type: str = "application/json"


class BusinessServer:
    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.scripts: dict[str, Script] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, data=None, *, status: int = 200, delay: float = 0.0, raw=None):
        body = raw if raw is not None else json.dumps(data if data is not None else {}).encode()
        self.scripts[path] = Script(status=status, body=body, delay=delay)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _handler(owner: BusinessServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            with owner._lock:
                owner.requests.append(
                    Seen(
                        method=self.command,
                        path=parts.path,
                        query=parse_qs(parts.query),
                        headers=dict(self.headers.items()),
                        body=body,
                    )
                )
            script = owner.scripts.get(parts.path) or Script(
                status=404, body=b'{"error": "not found"}'
            )
            if script.delay:
                time.sleep(script.delay)
            try:
                self.send_response(script.status)
                self.send_header("Content-Type", script.content_type)
                self.send_header("Content-Length", str(len(script.body)))
                self.end_headers()
                self.wfile.write(script.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = _serve  # noqa: N815 (the standard library's names)
        do_POST = _serve  # noqa: N815

        def log_message(self, *args):
            pass

    return Handler
