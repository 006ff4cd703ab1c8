"""The OpenAI-compatible embeddings path, with the real `openai` client against a local server
that speaks the protocol (this machine has no internet, and tests should not need one)."""

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from knowledge import services
from knowledge.embeddings import EmbeddingError, _openai
from knowledge.retrieval import search_documents
from knowledge.tests.conftest import FAQ_CSV

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
    yield EmbeddingsServer
    server.shutdown()


def test_it_embeds_through_an_openai_compatible_endpoint(endpoint):
    embedder = _openai("test-embedding")
    vectors = embedder.embed(["reset my password", "shipping time"])
    assert embedder.dims == DIMS and vectors.shape == (2, DIMS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert endpoint.requests[-1]["path"] == "/v1/embeddings"
    assert endpoint.requests[-1]["auth"] == "Bearer sk-test"
    assert endpoint.requests[-1]["model"] == "test-embedding"


def test_an_outage_is_an_embedding_error(endpoint):
    embedder = _openai("test-embedding")
    endpoint.mode = "down"
    with pytest.raises(EmbeddingError, match="openai:test-embedding"):
        embedder.embed(["anything"])


def test_a_change_of_dimensions_is_refused(endpoint):
    embedder = _openai("test-embedding")
    endpoint.mode = "wrong-size"
    with pytest.raises(EmbeddingError, match="returned 9 dimensions; expected 8"):
        embedder.embed(["one", "two"])


@pytest.mark.django_db
def test_a_bot_on_an_openai_model_syncs_and_searches(endpoint, settings, acme):
    from bots.tests.factories import BotFactory

    settings.EMBEDDING_MODEL = "openai:test-embedding"
    bot = BotFactory(organization=acme)
    assert bot.embedding_model_active == "openai:test-embedding"
    source = services.source_upload(bot=bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)
    assert source.status == "ready" and source.chunk_count == 4
    hit = search_documents(bot=bot, query="How do I reset my password?", k=1)[0]
    assert hit.title == "How do I reset my password?"
