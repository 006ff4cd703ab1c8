import csv
import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from knowledge.embeddings import _base_embedder

FAQ_ROWS = [
    (
        "How long does shipping take?",
        "Standard shipping takes 3 to 5 business days. Express arrives the next business day.",
        "shipping",
    ),
    (
        "Can I return an item?",
        "You can return any unused item within 30 days of delivery for a full refund.",
        "returns",
    ),
    (
        "How do I reset my password?",
        "Open Settings, choose Security, then Reset password. We e-mail you a link valid for "
        "one hour.",
        "account",
    ),
    (
        "What does error E-4012 mean?",
        "E-4012 means your card issuer declined the payment. Try another card or call your bank.",
        "billing",
    ),
]


def _csv(rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["question", "answer", "category"])
    writer.writerows(rows)
    return out.getvalue().encode()


FAQ_CSV = _csv(FAQ_ROWS)

INTENTS = {
    "intents": [
        {
            "tag": "card_arrival",
            "patterns": [
                "When will my card arrive?",
                "My new card has not come yet",
                "How long until I get my card?",
                "card still not delivered",
                "Where is my debit card?",
                "has my card been sent",
            ],
            "responses": ["Cards arrive within 5 working days of ordering."],
        },
        {
            "tag": "lost_card",
            "patterns": [
                "I lost my card",
                "My card was stolen",
                "I can't find my card anywhere",
                "someone took my wallet with my card",
                "block my lost card",
                "card missing, please freeze it",
            ],
            "responses": ["Freeze your card in the app right away, then order a replacement."],
        },
        {
            "tag": "exchange_rate",
            "patterns": [
                "What exchange rate do you use?",
                "How much is a euro in dollars?",
                "currency conversion rate",
                "is the exchange rate good",
                "what rate for converting pounds",
                "exchange rates today",
            ],
            "responses": ["We use the interbank rate with no markup on weekdays."],
        },
    ]
}
INTENTS_JSON = json.dumps(INTENTS).encode()


@pytest.fixture
def q_sync(monkeypatch):
    """Run django-q2 tasks in-process, as the worker would, at enqueue time."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)


class Site:
    """A local web site for URL and sitemap sources: `put` a page, `remove` it (then it 404s),
    `stop` the server (then its port refuses connections)."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        site = self
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, str]] = []  # (path, User-Agent)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                site.requests.append((self.path, self.headers.get("User-Agent", "")))
                status, headers, body = site.pages.get(self.path, (404, {}, b"Not here"))
                self.send_response(status)
                headers = {"Content-Length": str(len(body)), **headers}
                for name, value in headers.items():
                    if value is not None:  # None: leave the header out
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
                if headers["Content-Length"] is None:
                    self.close_connection = True  # the body ends where the connection does

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def put(self, path, body, content_type="text/html; charset=utf-8", status=200, **headers):
        data = body.encode() if isinstance(body, str) else body
        self.pages[path] = (status, {"Content-Type": content_type, **headers}, data)

    def remove(self, path: str) -> None:
        self.pages.pop(path, None)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def site(settings):
    """A web site on 127.0.0.1, which the fetcher may reach only with private networks allowed."""
    settings.KNOWLEDGE_FETCH_PRIVATE_NETWORKS = True
    web_site = Site()
    yield web_site
    web_site.stop()


def html_page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang='en'><head><title>{title} | Acme Help</title></head>"
        f"<body><nav>Home · Help</nav><main><h1>{title}</h1><p>{body}</p></main></body></html>"
    )


def sitemap(*urls: str, index: bool = False) -> str:
    entry, root = ("sitemap", "sitemapindex") if index else ("url", "urlset")
    entries = "".join(f"<{entry}><loc>{url}</loc></{entry}>" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<{root} xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</{root}>'
    )


# --- An OpenAI-compatible embeddings endpoint on this machine --------------------------------
DIMS = 8


def _vector(text: str) -> list[float]:
    # Bag of hashed words: texts sharing words are close, as with a real model.
    vector = np.zeros(DIMS)
    for word in text.lower().split():
        vector[int(hashlib.md5(word.strip("?.,").encode()).hexdigest(), 16) % DIMS] += 1.0
    return vector.tolist()


class EmbeddingsServer(BaseHTTPRequestHandler):
    mode = "ok"
    requests: list[dict] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers["Authorization"], **body}
        )
        if self.mode == "down":
            self.send_response(503)
            self.end_headers()
            return
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = DIMS + (1 if self.mode == "wrong-size" and len(texts) > 1 else 0)
        data = [
            {"object": "embedding", "index": i, "embedding": (_vector(t) + [0.5])[:dims]}
            for i, t in enumerate(texts)
        ]
        payload = json.dumps(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint(settings):
    EmbeddingsServer.mode, EmbeddingsServer.requests = "ok", []
    server = ThreadingHTTPServer(("127.0.0.1", 0), EmbeddingsServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.EMBEDDING_API_BASE = f"http://127.0.0.1:{server.server_port}/v1"
    settings.EMBEDDING_API_KEY = "sk-test"
    _base_embedder.cache_clear()  # a cached client would still point at an earlier server
    yield EmbeddingsServer
    server.shutdown()
    _base_embedder.cache_clear()
