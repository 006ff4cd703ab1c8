"""Fixtures for the answering pipeline: Acme's support bot with the demo knowledge (an FAQ, a
help article and intents, loaded through the knowledge services as an admin would), a local
OpenAI-compatible server for the LLM path, and `ask`, which runs one turn and checks the event
contract every time."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from conversations.pipeline import Turn, run
from conversations.tests.openai_server import OpenAIServer
from knowledge import services

DEMO = Path(__file__).resolve().parents[3] / "bots" / "demo"
FINAL_KEYS = {
    "type",
    "text",
    "outcome",
    "confidence",
    "citations",
    "extras",
    "requires_followup",
    "handoff",
    "handoff_reason",
    "priority",
    "actions",
    "trace",
}
TRACE_KEYS = (
    "category",
    "subtype",
    "classify_method",
    "query",
    "rewritten_query",
    "retrieved",
    "intent",
    "gate",
    "answer_method",
    "model",
    "tokens",
    "guardrails",
    "fallback",
    "timings_ms",
)
OUTCOMES = {"answered", "clarified", "deflected", "low_confidence", "handoff_proposed", "handoff"}


_embedded: dict[tuple[str, str], np.ndarray] = {}


@contextmanager
def _embeddings_remembered():
    """Every test loads the same knowledge, and MiniLM gives a text the same vector each time:
    a text embedded once in the session is reused while loading. (Only while loading: the
    pipeline's own query embeddings always run the model.)"""
    from knowledge.embeddings import LocalEmbedder

    original = LocalEmbedder.embed

    def embed(self, texts, *, batch_size=64):
        missing = [t for t in dict.fromkeys(texts) if (self.name, t) not in _embedded]
        if missing:
            vectors = original(self, missing, batch_size=batch_size)
            _embedded.update(((self.name, t), v) for t, v in zip(missing, vectors, strict=True))
        if not texts:
            return original(self, texts)
        return np.stack([_embedded[(self.name, t)] for t in texts])

    LocalEmbedder.embed = embed
    try:
        yield
    finally:
        LocalEmbedder.embed = original


def load_demo_knowledge(bot) -> None:
    with _embeddings_remembered():
        for name in ("acme-faq.csv", "acme-intents.json", "acme-warranty.md"):
            data = (DEMO / name).read_bytes()
            services.source_upload(bot=bot, filename=name, data=data, sync_now=True)


@pytest.fixture
def shop_bot(acme_bot):
    """Acme Support with Acme's demo knowledge: 12 FAQs on shipping, returns, account and
    payments, a warranty article, and four intents (greeting, thanks, opening hours, order
    status). No LLM: it answers extractively."""
    load_demo_knowledge(acme_bot)
    return acme_bot


@pytest.fixture
def llm_server():
    server = OpenAIServer()
    yield server
    server.stop()


@pytest.fixture
def llm_bot(shop_bot, llm_server, settings):
    """The same bot answering through an LLM on the local server. A 1 s timeout keeps the
    timeout tests quick."""
    settings.LLM_TIMEOUT = 1
    shop_bot.llm_base_url = llm_server.url
    shop_bot.llm_model = "acme-test-model"
    shop_bot.llm_api_key = "sk-acme-test"
    shop_bot.save(update_fields=["llm_base_url", "llm_model", "llm_api_key"])
    return shop_bot


def converse(bot, text: str, history=None, summary: str = "") -> tuple[list[str], dict]:
    """One turn through the pipeline: (token texts, final event), after checking the contract:
    tokens then exactly one final event, and the tokens add up to the final text."""
    events = list(run(Turn(bot=bot, text=text, history=list(history or []), summary=summary)))
    assert events and events[-1]["type"] == "final"
    tokens = [e["text"] for e in events[:-1]]
    assert all(e["type"] == "token" for e in events[:-1]), "only tokens before the final event"
    final = events[-1]
    assert "".join(tokens) == final["text"], "the tokens must add up to the final text"
    assert set(final) == FINAL_KEYS
    assert final["outcome"] in OUTCOMES
    assert set(final["extras"]) == {"suggestions", "disclaimer", "offer_human"}
    trace = final["trace"]
    for key in TRACE_KEYS:
        assert key in trace, key
    assert {"classify", "rewrite", "retrieve", "answer", "total"} <= set(trace["timings_ms"])
    return tokens, final


@pytest.fixture
def ask():
    return converse
