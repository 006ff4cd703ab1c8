"""Knowledge gaps: the customers' questions the bot did not answer well, grouped by meaning,
for the analytics page (analytics/views.py) and the weekly digest (analytics/digest.py). Which
questions count, and their stored vectors: analytics/gap_questions.py.

A question stops being a gap once the knowledge answers it (`_answered`): a passage of a
document written (Document.updated_at) after the question was asked scores at or above the
bot's strong bar for it (the relevance gate's bar for answering without a hedge, stored for
the bot's current knowledge: conversations/pipeline/gate.py), on the scale the gate compares,
Hit.score (the "title" scoring with the bot's domain adapter, knowledge/retrieval.py). Only
knowledge written after the question counts: a thumbs-down answer was given from passages that
already scored above the bar, and the same passages must not close it. Intent patterns do not
close a gap (an intent is accepted by its own classifier, not by this bar).

Groups are made per bot (each bot has its own knowledge and model) by sentence-transformers'
community detection over the bot's own embeddings: a group is a question (its centre) and
every other question at least `threshold` cosine-similar to it, the largest first. The
threshold comes from the bot's own knowledge (`threshold`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.urls import reverse

from analytics.definitions import GAP_KINDS, day_bounds
from analytics.gap_questions import Question, questions, vectors
from bots.models import Bot
from conversations.pipeline.catalog import knowledge_version
from conversations.pipeline.gate import calibration, title_sample
from knowledge.embeddings import EmbeddingError
from knowledge.models import Chunk, Document
from knowledge.retrieval import dense_values

# sentence-transformers' own default for community detection (duplicate questions), used
# when a bot has too few titles to say how close its distinct topics are.
DEFAULT_THRESHOLD = 0.75
MIN_TITLES = 3
TITLE_SAMPLE = 500
EXAMPLES = 3
LINKS = 10
BLOCK = 512  # questions scored against new knowledge at once (bounded memory)


# --- When the knowledge answers a question ----------------------------------------------------
def _answered(bot: Bot, found: list[Question], base: np.ndarray, adapted) -> np.ndarray:
    """Which questions a passage written after them now answers (module docstring)."""
    result = np.zeros(len(found), dtype=bool)
    if not found:
        return result
    earliest = min(q.at for q in found)
    written = dict(
        Document.objects.filter(bot=bot, updated_at__gt=earliest).values_list("id", "updated_at")
    )
    if not written:
        return result
    chunks = list(
        Chunk.objects.filter(
            document_id__in=list(written), embedding_model=bot.embedding_model_active
        )
        .exclude(kind=Chunk.Kind.PATTERN)
        .values_list("document_id", "kind", "embedding", "adapter", "adapter_embedding")
    )
    passages = [c for c in chunks if c[1] != Chunk.Kind.TITLE]
    if not passages:
        return result
    strong = calibration(bot, knowledge_version(bot))[0].strong

    def matrix(rows, adapted_side: bool):
        dims = base.shape[1] if not adapted_side else adapted.shape[1]
        out = np.full((len(rows), dims), np.nan, dtype=np.float32)
        for i, row in enumerate(rows):
            if row is not None:
                out[i] = row
        return out

    own = bot.embedding_adapter
    titles = {c[0]: c for c in chunks if c[1] == Chunk.Kind.TITLE}
    p_base = matrix([c[2] for c in passages], False)
    t_base = matrix([titles[c[0]][2] if c[0] in titles else None for c in passages], False)
    if adapted is not None:
        p_adapted = matrix([c[4] if own and c[3] == own else None for c in passages], True)
        t_adapted = matrix(
            [
                titles[c[0]][4] if c[0] in titles and titles[c[0]][3] == own else None
                for c in passages
            ],
            True,
        )
    written_at = np.asarray([written[c[0]].timestamp() for c in passages])
    asked_at = np.asarray([q.at.timestamp() for q in found])
    for lo in range(0, len(found), BLOCK):
        hi = min(lo + BLOCK, len(found))
        # NaN rows (no title, no adapter vector) give NaN cosines, which dense_values reads
        # as "absent", exactly as retrieval does for a chunk without them.
        sim, title = base[lo:hi] @ p_base.T, base[lo:hi] @ t_base.T
        sim_adapted = title_adapted = None
        if adapted is not None:
            sim_adapted, title_adapted = adapted[lo:hi] @ p_adapted.T, adapted[lo:hi] @ t_adapted.T
        score = dense_values(sim, sim_adapted, title, title_adapted, scoring="title", adapter=True)
        later = written_at[None, :] > asked_at[lo:hi, None]
        result[lo:hi] = ((score >= strong) & later).any(axis=1)
    return result


# --- Grouping ---------------------------------------------------------------------------------
def threshold(bot: Bot) -> tuple[float, str]:
    """How alike two questions must be to make one gap, from the bot's own knowledge: the
    median, over its titles (FAQ questions, article titles), of each title's cosine to the
    nearest *other* title. Two distinct answers of this bot are typically that close, so
    questions closer than that would be answered by one. Never below the bot's strong bar
    (how close a question must come to a passage to be answered from it). With fewer than
    three titles there is nothing to measure: sentence-transformers' own default."""
    titles = title_sample(bot, TITLE_SAMPLE)
    if len(titles) < MIN_TITLES:
        return DEFAULT_THRESHOLD, "default"
    vectors_ = np.stack([vector for _, _, vector in titles])
    similar = vectors_ @ vectors_.T
    np.fill_diagonal(similar, -np.inf)
    nearest = float(np.median(similar.max(axis=1)))
    strong = calibration(bot, knowledge_version(bot))[0].strong
    return round(max(nearest, strong), 4), "knowledge"


def communities(base: np.ndarray, bar: float) -> list[list[int]]:
    """Groups of row indices, largest first, each led by its centre (first index)."""
    if len(base) == 0:
        return []
    # Imported here: torch and sentence-transformers take seconds to import, and this module
    # is imported at every start of the web process, the worker and each manage.py command
    # (through the analytics page's live tile), which mostly never group anything.
    import torch
    from sentence_transformers.util import community_detection

    return community_detection(torch.from_numpy(base), threshold=bar, min_community_size=1)


@dataclass
class Gap:
    bot_id: int
    bot_name: str
    questions: list[Question]  # the group's, the centre first, then by closeness
    centre: np.ndarray
    previous: list[Question] = field(default_factory=list)

    @property
    def customers(self) -> int:
        return len({q.customer_id for q in self.questions})

    @property
    def previous_customers(self) -> int:
        return len({q.customer_id for q in self.previous})

    @property
    def bot_missed(self) -> int:
        return len({q.conversation_id for q in self.questions if "bot_missed" in q.kinds})

    @property
    def last_asked(self) -> datetime:
        return max(q.at for q in self.questions)

    @property
    def examples(self) -> list[str]:
        seen: dict[str, str] = {}
        for q in self.questions:
            seen.setdefault(" ".join(q.text.lower().split()), q.text)
            if len(seen) == EXAMPLES:
                break
        return list(seen.values())

    @property
    def kinds(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = defaultdict(int)
        for q in self.questions:
            for kind in q.kinds:
                counts[kind] += 1
        return [(GAP_KINDS[k], counts[k]) for k in GAP_KINDS if counts.get(k)]

    @property
    def conversation_ids(self) -> list[int]:
        newest = sorted(self.questions, key=lambda q: (q.at, q.message_id), reverse=True)
        return list(dict.fromkeys(q.conversation_id for q in newest))


def rank_key(gap: Gap):
    """Marked by an agent first, then by how many customers it hit, then by size, newest."""
    return (gap.bot_missed == 0, -gap.customers, -len(gap.questions), -gap.last_asked.timestamp())


@dataclass
class Report:
    gaps: list[Gap]
    questions: int  # still-open gap questions of the period
    answered: int  # gap questions of the period the knowledge answers since
    thresholds: dict[int, tuple[float, str]]
    seconds: float
    errors: list[str] = field(default_factory=list)


def report(*, filters) -> Report:
    """The gaps of `filters`' period (analytics.selectors.Filters), ranked (rank_key), each
    with the questions of the previous period of the same length that fall in it (trend).
    No permission check: analytics.selectors.gaps is the members' way in."""
    started = time.perf_counter()
    now = questions(**_period(filters))
    before = questions(**_period(filters.previous()))
    bots = Bot.objects.filter(organization_id=filters.organization_id)
    if filters.bot_id is not None:
        bots = bots.filter(pk=filters.bot_id)
    gaps: list[Gap] = []
    answered = 0
    thresholds: dict[int, tuple[float, str]] = {}
    errors = []
    for bot in bots.order_by("name", "id"):
        current = sorted((q for q in now.values() if q.bot_id == bot.pk), key=_order)
        if not current:
            continue
        earlier = sorted((q for q in before.values() if q.bot_id == bot.pk), key=_order)
        try:
            bot_gaps, closed, thresholds[bot.pk] = _bot_gaps(bot, current, earlier)
        except EmbeddingError as exc:
            errors.append(f"{bot.name}: the questions could not be embedded ({exc}).")
            continue
        answered += closed
        gaps.extend(bot_gaps)
    gaps.sort(key=rank_key)
    return Report(
        gaps=gaps,
        questions=sum(len(g.questions) for g in gaps),
        answered=answered,
        thresholds=thresholds,
        seconds=time.perf_counter() - started,
        errors=errors,
    )


def _bot_gaps(bot: Bot, current: list[Question], earlier: list[Question]):
    """(the bot's open gaps, how many of its questions the knowledge answers since, the
    grouping threshold and where it came from)."""
    base, adapted = vectors(bot, current)
    closed = _answered(bot, current, base, adapted)
    open_ = [q for q, shut in zip(current, closed, strict=True) if not shut]
    base = base[~closed]
    bar, how = threshold(bot)
    gaps = [
        Gap(bot.pk, bot.name, [open_[i] for i in group], base[group[0]])
        for group in communities(base, bar)
    ]
    if gaps and earlier:
        _trend(gaps, earlier, vectors(bot, earlier)[0], bar)
    return gaps, int(closed.sum()), (bar, how)


def _order(q: Question):
    return (q.at, q.message_id)


def _period(filters) -> dict:
    start, end = day_bounds(filters.start, filters.end)
    return {
        "organization_id": filters.organization_id,
        "start": start,
        "end": end,
        "bot_id": filters.bot_id,
        "channel": filters.channel,
    }


def _trend(gaps: list[Gap], earlier: list[Question], vectors_: np.ndarray, bar: float) -> None:
    """Each earlier question joins the gap whose centre it is most alike, as the grouping
    would have placed it (at least `bar` similar to the centre)."""
    centres = np.stack([g.centre for g in gaps])
    similar = vectors_ @ centres.T
    best = similar.argmax(axis=1)
    for i, question in enumerate(earlier):
        if similar[i, best[i]] >= bar:
            gaps[best[i]].previous.append(question)


def conversation_url(organization_slug: str, conversation_id: int) -> str:
    """The conversation's history page: the whole story, for any member (the console shows
    only what is open)."""
    return reverse("history_conversation", args=[organization_slug, conversation_id])


def present(gaps: list[Gap], *, organization_slug: str, base_url: str = "") -> list[dict]:
    """What the page and the e-mail show of each gap; `base_url` makes the links absolute."""
    rows = []
    for rank, gap in enumerate(gaps, start=1):
        ids = gap.conversation_ids
        rows.append(
            {
                "rank": rank,
                "bot": gap.bot_name,
                "size": len(gap.questions),
                "customers": gap.customers,
                "previous": len(gap.previous),
                "previous_customers": gap.previous_customers,
                "trend": len(gap.questions) - len(gap.previous),
                "bot_missed": gap.bot_missed,
                "examples": gap.examples,
                "kinds": gap.kinds,
                "last_asked": gap.last_asked,
                "conversations": [
                    (pk, base_url + conversation_url(organization_slug, pk)) for pk in ids[:LINKS]
                ],
                "more_conversations": max(0, len(ids) - LINKS),
            }
        )
    return rows
