"""What one turn carries through the pipeline: the caller's Turn, the steps' findings, and the
trace every step writes into (STYLE.md 5)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from bots.models import Bot
    from conversations.pipeline.actions import Call, PendingAction
    from conversations.pipeline.guardrails import Guard
    from conversations.pipeline.llm import LLMConfig
    from knowledge.intents import IntentMatch
    from knowledge.retrieval import Hit


@dataclass
class Turn:
    bot: Bot
    text: str  # the customer's new message (already saved by the caller)
    # (sender, text) of the last ~10 messages before it, oldest first; sender is one of
    # user / ai / agent / system.
    history: list[tuple[str, str]]
    summary: str = ""  # rolling summary of older turns / the customer's earlier conversations
    # The customer's verified id (the site's own, signed), sent to the bot's actions; None for
    # an anonymous visitor.
    user_id: str | None = None
    # The question the bot asked last turn for an action's missing argument, if any.
    pending_action: PendingAction | None = None
    # The stored customer message this turn answers (None for a draft or a test turn): its
    # action calls' idempotency keys are made from it, so a retried turn sends the same ones.
    message_id: int | None = None
    # False for a draft nobody asked the bot to act on (the console's suggested reply): the
    # business's systems are not called, and the draft comes from the knowledge alone.
    actions: bool = True

    def customer_texts(self) -> list[str]:
        """Everything the customer wrote in the window: their own data may be repeated back."""
        return [self.text] + [text for sender, text in self.history if sender == "user"]


@dataclass
class Classification:
    category: str  # answerable, greeting, nonsense, irrelevant, high_stakes, human
    subtype: str = ""  # high_stakes: cancellation, billing_dispute, security, legal, complaint
    method: str = "rules"  # rules, embeddings, llm, default
    # A soft decision (an off-topic pattern, a prototype) yields to knowledge that answers.
    soft: bool = False
    scores: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evidence:
    """What the bot's knowledge says about the question."""

    vector: np.ndarray | None = None
    passages: list[Hit] = field(default_factory=list)  # FAQ answers and article passages
    intent: IntentMatch | None = None
    intent_responses: list[str] = field(default_factory=list)
    intent_title: str = ""
    intent_url: str = ""  # the intent's own address, else its source's
    intent_source: str = ""  # the name of the knowledge source the intent came from
    top_pattern: Hit | None = None  # the best intent-pattern hit of the search
    error: str = ""  # the embedding backend failed: there is no evidence either way


@dataclass
class Context:
    turn: Turn
    llm: LLMConfig | None
    trace: dict[str, Any] = field(default_factory=lambda: {"timings_ms": {}})
    started: float = field(default_factory=time.perf_counter)
    # After a timeout or connection failure the LLM is not asked again within this turn: the
    # customer would wait one more timeout for each step.
    llm_down: bool = False
    classification: Classification | None = None
    query: str = ""
    evidence: Evidence = field(default_factory=Evidence)
    # The turn's action calls, for the runner to persist (conversations/pipeline/actions.py).
    action_calls: list[Call] = field(default_factory=list)
    # How many calls of each action this turn has made so far (their idempotency keys' count).
    action_counts: dict[str, int] = field(default_factory=dict)
    action_guard: Guard | None = None

    @property
    def bot(self) -> Bot:
        return self.turn.bot

    def llm_usable(self) -> bool:
        return self.llm is not None and not self.llm_down

    def elapsed_ms(self) -> float:
        return round((time.perf_counter() - self.started) * 1000, 1)

    def chat_messages(self, system: str, *, history: int) -> list[dict]:
        """The turn as an LLM reads it: the system prompt, the last `history` messages (the
        customer's as user, the bot's and agents' as assistant) and the customer's message."""
        messages = [{"role": "system", "content": system}]
        for sender, text in self.turn.history[-history:]:
            if sender == "user":
                messages.append({"role": "user", "content": text})
            elif sender in ("ai", "agent"):
                messages.append({"role": "assistant", "content": text})
        messages.append({"role": "user", "content": self.turn.text})
        return messages


@contextmanager
def timed(trace: dict, step: str):
    """Adds the block's wall time in ms to trace["timings_ms"][step]."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings = trace.setdefault("timings_ms", {})
        timings[step] = round(timings.get(step, 0.0) + (time.perf_counter() - started) * 1000, 1)
