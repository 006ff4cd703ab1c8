"""The answer-level figure: what the bot says, not only what retrieval ranks.

On an article set (articles.jsonl + questions.jsonl, the format of ../shared/benchmarks) the
articles are uploaded to a throw-away bot as an admin would (knowledge.evaluation), and every
question is asked through the real pipeline with no LLM configured, one turn each, so the
answer is the extractive one customers get without a model. Per question:

- outcome: "answered" (a strong passage quoted with its source), "hedged" (a weak passage
  quoted behind "I'm not completely sure…"), or "not answered" (a clarifying question, a
  deflection or anything else);
- from_correct_article: answered or hedged, and the quoted passage's chunk belongs to one of the
  question's labelled articles (the chunk the gate chose, as its trace records);
- contains_answer: from_correct_article, and the quoted text holds at least half of the
  article's lead: the content words (stop words left out, crude plural/-ing/-ed stemming) of
  the body's first sentence, extended by the next sentence or list item while it has fewer than
  8 content words. The lead stands in for "the article's answer": in FAQ answers and in the
  top answer of a help thread the first sentence is usually the direct answer, but not always,
  so this undercounts answers that quote a later sentence that also answers.

Shares are of all questions; `kept` is contains_answer / from_correct_article, how often the
excerpt (1-3 sentences of the chunk) keeps the answer once retrieval found the right article.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from conversations.pipeline import Turn, run
from conversations.pipeline.answer import units
from conversations.pipeline.rewrite import content_words
from knowledge.evaluation import _ingest, read_jsonl, throwaway_bot
from knowledge.models import Chunk

LEAD_MIN_WORDS = 8
CONTAINED = 0.5
HEDGE = "I'm not completely sure, but this may help: "


def lead(body: str) -> set[str]:
    """The content words of the article's opening sentence(s): its answer, as far as a
    measure without a person can tell."""
    words: set[str] = set()
    for unit, _is_item in units(body)[:2]:
        words |= _words(unit)
        if len(words) >= LEAD_MIN_WORDS:
            break
    return words


def _words(text: str) -> set[str]:
    return {re.sub(r"(?:ing|ed|es|s)$", "", w) if len(w) > 4 else w for w in content_words(text)}


def quoted_text(final: dict) -> str:
    """The passage the customer was shown, without the hedge or the source line."""
    text = final["text"]
    if final["outcome"] == "low_confidence":
        return text.removeprefix(HEDGE)
    return text.rsplit("\n\nSource: ", 1)[0]


def recall(lead_words: set[str], quoted: str) -> float:
    return len(lead_words & _words(quoted)) / len(lead_words) if lead_words else 0.0


def evaluate_answers(
    articles_path: Path, questions_path: Path, *, limit: int | None = None
) -> dict:
    questions = read_jsonl(questions_path)[:limit]
    if not questions:
        raise ValueError(f"{questions_path}: no questions")
    bodies = {a["id"]: a.get("body", "") for a in read_jsonl(articles_path)}
    leads = {article_id: lead(body) for article_id, body in bodies.items()}
    counts = dict.fromkeys(("answered", "hedged", "from_correct_article", "contains_answer"), 0)
    recalls, timings = [], []
    with throwaway_bot() as bot:
        report = _ingest(bot, articles_path)
        external = dict(Chunk.objects.filter(bot=bot).values_list("id", "document__external_id"))
        for question in questions:
            started = time.perf_counter()
            final = [e for e in run(Turn(bot=bot, text=question["question"], history=[]))][-1]
            timings.append((time.perf_counter() - started) * 1000)
            outcome, method = final["outcome"], final["trace"]["answer_method"]
            if method != "extractive" or outcome not in ("answered", "low_confidence"):
                continue
            counts["answered" if outcome == "answered" else "hedged"] += 1
            article = external.get(final["trace"]["gate"].get("chunk_id"))
            if article not in question["article_ids"]:
                continue
            counts["from_correct_article"] += 1
            share = recall(leads.get(article, set()), quoted_text(final))
            recalls.append(share)
            counts["contains_answer"] += share >= CONTAINED
    n = len(questions)
    report.update(
        n=n,
        **{key: round(value / n, 4) for key, value in counts.items()},
        not_answered=round(1 - (counts["answered"] + counts["hedged"]) / n, 4),
        kept=round(counts["contains_answer"] / counts["from_correct_article"], 4)
        if counts["from_correct_article"]
        else None,
        lead_recall_mean=round(float(np.mean(recalls)), 4) if recalls else None,
        p50_ms=round(float(np.percentile(timings, 50)), 1),
        p95_ms=round(float(np.percentile(timings, 95)), 1),
    )
    return report
