"""Step 4: the relevance gate. Is the best passage good enough to answer from?

strong: answer from it. weak: answer with a disclaimer and no sources (the passage is related,
but may not answer this question). none: say the knowledge does not cover it and offer a
person (answer.out_of_scope). An intent match uses the intent classifier's own calibrated
acceptance (knowledge/intents.py).

The bars are calibrated per bot, from its own knowledge, never global constants: a score means
different things in 12 FAQs and in 10,000 help-centre passages, and for different models.

- Noise: ~30 everyday off-topic questions (prototypes.IRRELEVANT: weather, sport, trivia) are
  searched against the bot exactly as a customer's question would be. Their best passage
  scores are what "unrelated to this bot" scores here.
- Neighbours: up to 24 of the bot's own titles (FAQ questions, article titles), spread over its
  knowledge, are searched the same way, with their stored title vectors. The best score of a
  *different* document is what an in-domain question scores on a passage that does not answer
  it.
- Strong bar: the neighbours' median. A question is answered without a hedge only when its
  best passage beats what a typical neighbour scores.
- Weak bar: halfway between the noise median and the neighbours' median. Below it a question
  is closer to unrelated text than to this bot's subject, and the bot asks instead of guessing.
- With fewer than 3 neighbours (a tiny knowledge base) the weak bar is the noise's 90th
  percentile and the strong bar is halfway from there to the titles' scores on their own
  documents.

Measured on public sets (shared/benchmarks, 200 questions each, with CLINC150's 100
out-of-scope queries as unrelated traffic): on StackFAQ 98% of questions pass as strong, 97%
of those correctly; on CovidFAQ, where articles are alike and the top hit is right 70% of the
time, 36% pass as strong with 88% right and most others are hedged; 97-98% of the unrelated
queries find nothing (decision none: the out-of-scope reply, or a deflection for chit-chat) and
none gets a confident answer.

About 55 searches (the title vectors are stored, the off-topic ones embedded once per process):
~0.2 s for a small bot, well under a second for thousands of chunks. They are made when the
knowledge changes, by the process that changed it (`calibration_store`, on knowledge_changed),
and stored on the bot with the knowledge version (catalog.knowledge_version) they belong to;
every serving process reads them once and caches them. A turn calibrates only when no stored
bars match its version (a change committed a moment ago, or a bot synced before this existed).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from bots.models import Bot
from conversations.pipeline.context import Context, timed
from conversations.pipeline.prototypes import IRRELEVANT, prototypes
from knowledge.embeddings import EmbeddingError
from knowledge.models import Chunk
from knowledge.retrieval import Hit, search

log = logging.getLogger(__name__)

NOISE_QUANTILE = 0.90
TITLE_SAMPLE = 24
MIN_NEIGHBOURS = 3
SOURCES = 4  # passages an LLM may answer from


@dataclass
class Calibration:
    weak: float
    strong: float
    details: dict = field(default_factory=dict)


_cache: dict[int, tuple[tuple, Calibration]] = {}
_lock = threading.Lock()


def calibration(bot: Bot, version: tuple) -> tuple[Calibration, bool]:
    """The bot's bars for this knowledge version, and whether they were ready (cached in this
    process or stored at the last knowledge change) rather than computed for this turn."""
    cached = _cache.get(bot.pk)
    if cached is not None and cached[0] == version:
        return cached[1], True
    with _lock:
        cached = _cache.get(bot.pk)  # another thread may have just computed it
        if cached is not None and cached[0] == version:
            return cached[1], True
        stored = _stored(bot, version)
        if stored is not None:
            _cache[bot.pk] = (version, stored)
            return stored, True
        result = calibrate(bot)
        _cache[bot.pk] = (version, result)
        _store(bot, version, result)
    log.info("bot %s: relevance gate calibrated: %s", bot.pk, result)
    return result, False


def calibration_store(bot: Bot) -> Calibration:
    """Calibrate for the knowledge as it is now and store the bars on the bot (the receiver of
    knowledge.signals.knowledge_changed, wired in conversations/apps.py)."""
    from conversations.pipeline.catalog import knowledge_version

    bot.refresh_from_db(fields=["embedding_model_active", "embedding_adapter"])
    version = knowledge_version(bot)
    result = calibrate(bot)
    with _lock:
        _cache[bot.pk] = (version, result)
    _store(bot, version, result)
    log.info("bot %s: relevance gate calibrated after a knowledge change: %s", bot.pk, result)
    return result


def _stored(bot: Bot, version: tuple) -> Calibration | None:
    # Read fresh: the caller's bot may be an instance loaded before the last change.
    stored = Bot.objects.filter(pk=bot.pk).values_list("gate_calibration", flat=True).first()
    if not stored or stored.get("version") != _jsonable(version):
        return None
    return Calibration(weak=stored["weak"], strong=stored["strong"], details=stored["details"])


def _store(bot: Bot, version: tuple, result: Calibration) -> None:
    Bot.objects.filter(pk=bot.pk).update(
        gate_calibration={
            "version": _jsonable(version),
            "weak": result.weak,
            "strong": result.strong,
            "details": _plain(result.details),
        }
    )


def _jsonable(version: tuple) -> list:
    return [v if isinstance(v, str) else int(v) for v in version]


def _plain(value):
    """numpy scalars (np.quantile's) as plain numbers, for JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _best_passage(hits: list[Hit], exclude_document: int | None = None) -> Hit | None:
    return next(
        (h for h in hits if h.kind != "pattern" and h.document_id != exclude_document), None
    )


def title_sample(bot: Bot, size: int = TITLE_SAMPLE) -> list[tuple[int, str, np.ndarray]]:
    """Up to `size` title chunks (document id, text, vector), evenly spread over the
    knowledge. Also the knowledge gaps' measure of how close two of the bot's answers are."""
    titles = Chunk.objects.filter(
        bot=bot, embedding_model=bot.embedding_model_active, kind=Chunk.Kind.TITLE
    )
    ids = list(titles.order_by("id").values_list("id", flat=True))
    if len(ids) > size:
        step = len(ids) / size
        ids = [ids[int(i * step)] for i in range(size)]
    rows = titles.filter(id__in=ids).order_by("id").values_list("document_id", "text", "embedding")
    return [(doc, text, np.asarray(vector, dtype=np.float32)) for doc, text, vector in rows]


def calibrate(bot: Bot) -> Calibration:
    started = time.perf_counter()

    def searched(text: str, vector: np.ndarray) -> list[Hit]:
        return search(
            bot=bot, query=text, vector=vector, k=8, one_per_document=True, keyword_weight=0.0
        )

    probes = prototypes(bot.embedding_model_active).vectors["irrelevant"]
    noise = []
    for text, vector in zip(IRRELEVANT, probes, strict=True):
        best = _best_passage(searched(text, vector))
        noise.append(best.score if best is not None else 0.0)
    own, neighbours = [], []
    for document_id, text, vector in title_sample(bot):
        hits = searched(text, vector)
        mine = next((h for h in hits if h.document_id == document_id), None)
        if mine is not None:
            own.append(mine.score)
        other = _best_passage(hits, exclude_document=document_id)
        if other is not None:
            neighbours.append(other.score)
    if len(neighbours) >= MIN_NEIGHBOURS:
        strong, method = float(np.median(neighbours)), "neighbours"
        weak = (float(np.median(noise)) + strong) / 2
    else:
        weak = float(np.quantile(noise, NOISE_QUANTILE))
        strong, method = (weak + float(np.median(own))) / 2 if own else weak, "few titles"
    strong = max(strong, weak)
    return Calibration(
        weak=round(weak, 4),
        strong=round(strong, 4),
        details={
            "method": method,
            "noise": _summary(noise),
            "neighbours": _summary(neighbours),
            "own": _summary(own),
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )


def _summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    q = np.quantile(values, [0.1, 0.5, 0.9])
    return {"n": len(values), "p10": round(q[0], 3), "p50": round(q[1], 3), "p90": round(q[2], 3)}


@dataclass
class Gate:
    decision: str  # intent, strong, weak, none, unavailable
    best: Hit | None = None
    score: float | None = None
    sources: list[Hit] = field(default_factory=list)


def step(ctx: Context, version: tuple) -> Gate:
    with timed(ctx.trace, "gate"):
        evidence = ctx.evidence
        if evidence.error:
            gate = Gate("unavailable")
            ctx.trace["gate"] = {"decision": gate.decision}
            return gate
        try:
            bars, cached = calibration(ctx.bot, version)
        except EmbeddingError as exc:  # the off-topic probes could not be embedded
            ctx.evidence.error = str(exc)[:300]
            ctx.trace["gate"] = {"decision": "unavailable", "error": ctx.evidence.error}
            return Gate("unavailable")
        best = evidence.passages[0] if evidence.passages else None
        score = best.score if best is not None else None
        if score is None or score < bars.weak:
            decision = "none"
        else:
            decision = "strong" if score >= bars.strong else "weak"
        intent = evidence.intent
        if intent is not None and intent.accepted and evidence.intent_responses:
            # Both an intent and a passage qualify: the closer one answers.
            if decision != "strong" or intent.nearest >= score:
                decision = "intent"
        sources = []
        if decision == "strong":
            sources = [h for h in evidence.passages if h.score >= bars.weak][:SOURCES]
        gate = Gate(decision, best, score, sources)
        ctx.trace["gate"] = {
            "decision": decision,
            "score": round(score, 4) if score is not None else None,
            "chunk_id": best.chunk_id if best is not None else None,
            "weak": bars.weak,
            "strong": bars.strong,
            "calibration": {**bars.details, "cached": cached},
        }
    return gate
