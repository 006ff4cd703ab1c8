"""Measure retrieval and intent matching on labelled data, through the real product path:
the file is uploaded to a throw-away bot, synced (parsed, chunked, embedded, stored in
PostgreSQL), the intent model trained and calibrated, and every query answered by the same
functions the bot uses. The bot is deleted afterwards."""

from __future__ import annotations

import json
import re
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from django.db import connection

from bots.models import Bot, Organization
from knowledge.adaptation import adapter_train
from knowledge.intents import intent_match
from knowledge.models import Document, IntentModel, RetrievalProfile
from knowledge.parsers.base import _load_json, _load_yaml
from knowledge.retrieval import embed_query, search_documents
from knowledge.services import source_upload
from knowledge.tuning import profile_refresh


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: {exc}") from None
    return rows


@contextmanager
def throwaway_bot():
    name = f"evaluate-{uuid.uuid4().hex[:8]}"
    organization = Organization.objects.create(name=name, slug=name)
    try:
        yield Bot.objects.create(organization=organization, name=name, slug=name)
    finally:
        organization.delete()


def _latency(ms: list[float]) -> dict:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
    }


def _ingest(bot: Bot, path: Path, data: bytes | None = None) -> dict:
    started = time.perf_counter()
    data = path.read_bytes() if data is None else data
    source = source_upload(bot=bot, filename=path.name, data=data, sync_now=True)
    seconds = time.perf_counter() - started
    report = {
        "documents": source.document_count,
        "chunks": source.chunk_count,
        "ingest_s": round(seconds, 1),
        "chunks_per_s": round(source.chunk_count / seconds, 1) if seconds else None,
    }
    # What the worker does next in production: fine-tune the bot's adapter on its articles.
    started = time.perf_counter()
    report["adapter"] = bool(adapter_train(bot=bot))
    if report["adapter"]:
        report["adapter_s"] = round(time.perf_counter() - started, 1)
    # ...and then, as knowledge/tasks.py does, the bot chooses its ranking (with its adapter).
    started = time.perf_counter()
    profile_refresh(bot=bot)
    report["tuning_s"] = round(time.perf_counter() - started, 1)
    return report


def hold_out_intents(intents_path: Path, fraction: float, seed: int) -> tuple[bytes, set[str]]:
    """The intent file without a seeded random share of its intents, and their tags.

    Their queries become near out-of-scope requests: the bot cannot serve them, yet their
    neighbours (the other half of "heater on / heater off") stay, which is exactly the request a
    deployed bot meets when its owner has not written every intent."""
    if not 0 < fraction < 1:
        raise ValueError(f"--hold-out-intents: a fraction between 0 and 1, not {fraction:g}")
    text = intents_path.read_text(encoding="utf-8")
    obj = _load_yaml(text) if not text.lstrip().startswith("{") else _load_json(text)
    intents = obj.get("intents") if isinstance(obj, dict) else None
    if not isinstance(intents, list) or len(intents) < 3:
        raise ValueError("--hold-out-intents: the file needs at least 3 intents to hold some out")
    tags = [str(item.get("tag", "")) for item in intents if isinstance(item, dict)]
    # At least one intent out, and at least two kept: a classifier needs two classes.
    count = min(max(1, round(fraction * len(tags))), len(tags) - 2)
    held = set(np.random.default_rng(seed).choice(sorted(tags), size=count, replace=False))
    kept = [item for item in intents if str(item.get("tag", "")) not in held]
    return json.dumps({**obj, "intents": kept}).encode(), held


def evaluate_intents(
    intents_path: Path,
    queries_path: Path,
    *,
    limit: int | None = None,
    hold_out: float = 0.0,
    seed: int = 0,
) -> dict:
    """Top-1, accepted-and-correct and out-of-scope recall. With `hold_out`, that share of the
    intents (seeded) is removed from the uploaded file and their queries are expected to be
    refused (near out-of-scope); `near_oos_recall` counts those alone."""
    queries = read_jsonl(queries_path)[:limit]
    data, held = (None, set()) if not hold_out else hold_out_intents(intents_path, hold_out, seed)
    with throwaway_bot() as bot:
        report = _ingest(bot, intents_path, data)
        intent_model = IntentModel.objects.get(bot=bot, embedding_model=bot.embedding_model_active)
        report["threshold"] = round(intent_model.threshold, 4)
        report["calibration"] = intent_model.metrics
        in_scope = in_correct = accepted_correct = 0
        oos = oos_rejected = rejected = near = near_rejected = 0
        timings = []
        for query in queries:
            started = time.perf_counter()
            text = query["text"]
            match = intent_match(bot=bot, text=text, vector=embed_query(bot, text))
            timings.append((time.perf_counter() - started) * 1000)
            accepted = bool(match and match.accepted)
            rejected += not accepted
            if query["expected"] is None or query["expected"] in held:
                oos += 1
                oos_rejected += not accepted
                near += query["expected"] is not None
                near_rejected += query["expected"] is not None and not accepted
            else:
                in_scope += 1
                correct = bool(match) and match.tag == query["expected"]
                in_correct += correct
                accepted_correct += correct and accepted
    report.update(
        n=len(queries),
        top1_accuracy=round(in_correct / in_scope, 4) if in_scope else None,
        accepted_correct=round(accepted_correct / in_scope, 4) if in_scope else None,
        oos_recall=round(oos_rejected / oos, 4) if oos else None,
        oos_precision=round(oos_rejected / rejected, 4) if oos and rejected else None,
        **_latency(timings),
    )
    if hold_out:
        report.update(
            held_out_intents=len(held),
            near_oos=near,
            near_oos_recall=round(near_rejected / near, 4) if near else None,
        )
    return report


# mode: search_documents' overrides ("fts" ranks with PostgreSQL's full text instead)
MODES = {
    "base": {"keyword_weight": 0.0, "adapter": False, "scoring": "title"},
    "dense": {"keyword_weight": 0.0, "adapter": True, "scoring": "title"},
    "bm25": {"keyword_weight": 1.0},
    "fts": None,
    "rrf": {"keyword_weight": 0.5, "adapter": True, "scoring": "title"},
    "hybrid": {},  # what the bot does: the setting it chose for itself (knowledge/tuning.py)
}


def _fts_documents(bot: Bot, query: str, k: int) -> list[int]:
    """Documents by their best chunk's ts_rank_cd (normalised by length) over any of the
    question's words: PostgreSQL's own keyword ranking, for comparison with BM25."""
    words = re.findall(r"\w+", query)
    if not words:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.document_id, max(ts_rank_cd(c.search_vector, q, 1)) AS rank
            FROM knowledge_chunk c, to_tsquery('english', %s) q
            WHERE c.bot_id = %s AND c.embedding_model = %s AND c.kind <> 'title'
              AND c.search_vector @@ q
            GROUP BY c.document_id ORDER BY rank DESC LIMIT %s
            """,
            [" | ".join(words), bot.pk, bot.embedding_model_active, k],
        )
        return [row[0] for row in cursor.fetchall()]


def _choice(bot: Bot) -> dict:
    """The setting the bot chose and its own measurement of it."""
    profile = RetrievalProfile.objects.filter(
        bot=bot, embedding_model=bot.embedding_model_active
    ).first()
    if profile is None:
        return {"choice": "dense (no profile)"}
    chosen = next((c for c in profile.metrics.get("candidates", []) if c["chosen"]), {})
    return {
        "choice": profile.choice.get("label", ""),
        "self_hit_at_1": chosen.get("hit_at_1"),
        "self_mrr": chosen.get("mrr"),
        "self_questions": profile.metrics.get("questions"),
        "self_reason": profile.metrics.get("reason"),
        "self_candidates": profile.metrics.get("candidates", []),
    }


def evaluate_articles(
    articles_path: Path,
    questions_path: Path,
    *,
    limit: int | None = None,
    modes: tuple[str, ...] = ("hybrid",),
) -> dict:
    """hit@1, hit@5 and MRR@10 over articles, per mode (the last is the report's headline):
    "base" the base model alone, "dense" with the bot's adapter, "bm25" keywords alone, "fts"
    PostgreSQL's full-text rank alone, "rrf" an equal-weight fusion, "hybrid" what the bot does
    (the setting it chose from its own content, reported as "choice")."""
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"Unknown mode(s): {', '.join(sorted(unknown))}")
    questions = read_jsonl(questions_path)[:limit]
    with throwaway_bot() as bot:
        report = _ingest(bot, articles_path)
        report.update(_choice(bot))
        ids = dict(Document.objects.filter(bot=bot).values_list("id", "external_id"))
        # Each question is embedded once and shared by every weight; its embedding time is
        # added to every run's latency, which is embedding + search, as a customer waits for.
        vectors, embed_ms = [], []
        for question in questions:
            started = time.perf_counter()
            vectors.append(embed_query(bot, question["question"]))
            embed_ms.append((time.perf_counter() - started) * 1000)
        runs = {}
        for mode in modes:
            hit1 = hit5 = 0
            reciprocal, timings = [], []
            for question, vector, embedding_ms in zip(questions, vectors, embed_ms, strict=True):
                started = time.perf_counter()
                if MODES[mode] is None:
                    found = _fts_documents(bot, question["question"], 10)
                else:
                    hits = search_documents(
                        bot=bot, query=question["question"], k=10, vector=vector, **MODES[mode]
                    )
                    found = [h.document_id for h in hits]
                timings.append(embedding_ms + (time.perf_counter() - started) * 1000)
                ranked = [ids[d] for d in found]
                wanted = set(question["article_ids"])
                rank = next((i for i, a in enumerate(ranked, 1) if a in wanted), None)
                hit1 += rank == 1
                hit5 += rank is not None and rank <= 5
                reciprocal.append(1 / rank if rank else 0.0)
            runs[mode] = {
                "hit_at_1": round(hit1 / len(questions), 4),
                "hit_at_5": round(hit5 / len(questions), 4),
                "mrr": round(float(np.mean(reciprocal)), 4),
                **_latency(timings),
            }
    report.update(n=len(questions), **runs[modes[-1]])
    if len(modes) > 1:
        report["by_mode"] = runs
    return report
