"""Fixtures for the chat channels' tests (runner, widget socket, API, rate limits).

Each test module imports by name the fixtures it uses (pytest finds fixtures imported into a
module), so conversations/tests/conftest.py stays with the data model's tests.
"""

from __future__ import annotations

import threading
import uuid

import pytest

from chat import ratelimit

SHIPPING = "Standard shipping takes 3 to 5 business days."


class ScriptedPipeline:
    """Stands in for conversations.pipeline.run: answers `answer` (or `answers[question]`) word
    by word, then a final event with `final` merged in. `gate`, when set, holds the answer
    before its first token until the test opens it; `error` makes the run raise after its
    first token."""

    def __init__(self) -> None:
        self.answer = SHIPPING
        self.answers: dict[str, str] = {}
        self.final: dict = {}
        self.turns: list = []
        self.gate: threading.Event | None = None
        self.midway = None
        self.error: Exception | None = None

    def hold(self) -> threading.Event:
        self.gate = threading.Event()
        return self.gate

    def run(self, turn):
        self.turns.append(turn)
        if self.gate is not None and not self.gate.wait(timeout=20):
            raise TimeoutError("the test never opened the gate")
        answer = self.answers.get(turn.text, self.answer)
        words = answer.split(" ")
        for i, word in enumerate(words):
            yield {"type": "token", "text": word if i == 0 else " " + word}
            if i == 0 and self.midway is not None and not self.midway.wait(timeout=20):
                raise TimeoutError("the test never let the answer go on")
            if self.error is not None:
                raise self.error
        yield {
            "type": "final",
            "text": answer,
            "outcome": "answered",
            "confidence": 0.9,
            "citations": [
                {"n": 1, "chunk_id": 1, "document_id": 1, "title": "Shipping", "url": ""}
            ],
            "extras": {"suggestions": [], "offer_human": False},
            "requires_followup": False,
            "handoff": False,
            "handoff_reason": "",
            "priority": None,
            "trace": {"scripted": True},
            **self.final,
        }


@pytest.fixture
def scripted(monkeypatch):
    """The pipeline replaced by a ScriptedPipeline (fast, and tells exactly what it answers)."""
    pipeline = ScriptedPipeline()
    monkeypatch.setattr("conversations.pipeline.run", pipeline.run)
    return pipeline


@pytest.fixture
def fresh_rate_limits(monkeypatch):
    """Rate-limit counters of this test only. They live in the cache, which outlives a test,
    and with REDIS_URL set it is a shared Redis: a prefix per test, never cache.clear()."""
    monkeypatch.setattr(ratelimit, "KEY_PREFIX", f"chat-rate-test-{uuid.uuid4().hex}")


@pytest.fixture
def faq_bot(acme_bot):
    """Acme's bot with the knowledge tests' four-question FAQ, synced (real embeddings)."""
    from knowledge import services as knowledge_services
    from knowledge.tests.conftest import FAQ_CSV

    knowledge_services.source_upload(bot=acme_bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)
    return acme_bot
