"""Step 3: what the bot's knowledge holds for the (rewritten) question.

The query is embedded once here; search, intent matching and classification's prototypes all
reuse that vector. Search returns FAQ answers, article passages and intent patterns together:
passages are evidence to answer from, while a pattern is a customer phrasing that the intent
classifier judges on its own calibrated terms.
"""

from __future__ import annotations

import logging

from conversations.pipeline.context import Context, Evidence, timed
from knowledge.embeddings import EmbeddingError
from knowledge.intents import intent_match
from knowledge.models import Document
from knowledge.retrieval import embed_query, search

log = logging.getLogger(__name__)

K = 12  # hits fetched: room for passages when intent patterns crowd the top
PASSAGES = 5  # passages kept as evidence


def step(ctx: Context, *, search_knowledge: bool = True) -> Evidence:
    """Embed, search (unless only the intents matter, as for a greeting) and match intents."""
    evidence = ctx.evidence
    with timed(ctx.trace, "retrieve"):
        try:
            evidence.vector = embed_query(ctx.bot, ctx.query)
            hits = (
                search(bot=ctx.bot, query=ctx.query, vector=evidence.vector, k=K)
                if search_knowledge
                else []
            )
            evidence.intent = intent_match(bot=ctx.bot, text=ctx.query, vector=evidence.vector)
        except EmbeddingError as exc:
            # The bot's embedding endpoint is down: there is no evidence either way, which the
            # gate turns into an offer of a person rather than a guess.
            log.warning("bot %s: retrieval unavailable: %s", ctx.bot.pk, exc)
            evidence.error = str(exc)[:300]
            hits = []
        evidence.passages = [h for h in hits if h.kind != "pattern"][:PASSAGES]
        evidence.top_pattern = next((h for h in hits if h.kind == "pattern"), None)
        if evidence.intent is not None and evidence.intent.accepted:
            _load_intent(evidence)
    ctx.trace["retrieved"] = [
        {
            "chunk_id": h.chunk_id,
            "document_id": h.document_id,
            "kind": h.kind,
            "score": round(h.score, 4),
            "dense": round(h.dense, 4),
            "keyword": round(h.keyword, 4),
            "fused": round(h.fused, 5),  # what ordered them: the bot's chosen fusion
        }
        for h in hits
    ]
    match = evidence.intent
    ctx.trace["intent"] = (
        {
            "document_id": match.document_id,
            "tag": match.tag,
            "confidence": round(match.confidence, 4),
            "nearest": round(match.nearest, 4),
            "threshold": round(match.threshold, 4),
            "accepted": match.accepted,
        }
        if match is not None
        else None
    )
    if evidence.error:
        ctx.trace["retrieve_error"] = evidence.error
    return evidence


def _load_intent(evidence: Evidence) -> None:
    row = (
        Document.objects.filter(pk=evidence.intent.document_id)
        .values_list("title", "responses", "url", "source__name", "source__url")
        .first()
    )
    if row is not None:
        evidence.intent_title, evidence.intent_responses = row[0], list(row[1] or [])
        evidence.intent_url = row[2] or row[4] or ""
        evidence.intent_source = row[3]
