"""Knowledge gaps: the customers' questions the bot did not answer well, grouped by meaning,
for the analytics page (analytics/views.py) and the weekly digest (analytics/services.py).

A gap question is a customer message behind one of the weak answers of
analytics.definitions.GAP_KINDS, asked in the period (settings.TIME_ZONE days), never in the
Playground. Every question of a conversation an agent marked "the bot should have handled
this" is one too; such a conversation with no weak answer gives the question the bot last
replied to before the handoff (else the customer's first message).

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

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import torch
from django.db.models import F, Min, OuterRef, Q, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from sentence_transformers.util import community_detection

from analytics.definitions import (
    ANSWERING_OUTCOMES,
    GAP_KINDS,
    PLAYGROUND,
    day_bounds,
    gap_kinds,
)
from analytics.models import GapQuestion
from bots.models import Bot, Organization
from conversations.models import Conversation, Message
from conversations.pipeline.catalog import knowledge_version
from conversations.pipeline.gate import calibration
from escalation.models import EscalationLog
from knowledge.embeddings import EmbeddingError, get_embedder
from knowledge.models import Chunk, Document
from knowledge.retrieval import dense_values

log = logging.getLogger(__name__)

# sentence-transformers' own default for community detection (duplicate questions), used
# when a bot has too few titles to say how close its distinct topics are.
DEFAULT_THRESHOLD = 0.75
MIN_TITLES = 3
TITLE_SAMPLE = 500
EXAMPLES = 3
LINKS = 10
BLOCK = 512  # questions scored against new knowledge at once (bounded memory)
WEAK_FILTER = (
    Q(outcome__in=("clarified", "low_confidence"))
    | Q(trace__category="out_of_scope")
    | Q(feedback=-1)
    | Q(confirmed=False)
)


@dataclass
class Question:
    message_id: int
    text: str
    at: datetime
    conversation_id: int
    customer_id: int
    bot_id: int
    bot_missed: bool
    kinds: set[str] = field(default_factory=set)


def questions(
    *, organization_id: int, start, end, bot_id: int | None = None, channel: str | None = None
) -> dict[int, Question]:
    """The gap questions asked in [start, end) (instants), by message id."""
    scope = _scope(organization_id, bot_id, channel, "conversation__")
    asked = Q(reply_to__created_at__gte=start, reply_to__created_at__lt=end)
    found: dict[int, Question] = {}

    def add(row, kinds) -> None:
        pk, text, at, conversation_id, customer_id, bot, missed = row
        if not (text or "").strip():
            return
        question = found.get(pk)
        if question is None:
            question = found[pk] = Question(
                pk, text.strip(), at, conversation_id, customer_id, bot, missed
            )
        question.kinds.update(kinds)
        if missed:
            question.kinds.add("bot_missed")

    head = (
        "reply_to_id",
        "reply_to__text",
        "reply_to__created_at",
        "conversation_id",
        "conversation__customer_id",
        "conversation__bot_id",
        "conversation__bot_missed",
    )
    answers = Message.objects.filter(scope, asked, WEAK_FILTER, sender=Message.Sender.AI)
    for *row, outcome, category, feedback, confirmed in answers.values_list(
        *head, "outcome", "trace__category", "feedback", "confirmed"
    ):
        add(
            row,
            gap_kinds(outcome=outcome, category=category, feedback=feedback, confirmed=confirmed),
        )

    # The last answer before the conversation's first handoff, when the bot did answer.
    first_handoff = Subquery(
        EscalationLog.objects.filter(conversation_id=OuterRef("conversation_id"))
        .order_by("triggered_at")
        .values("triggered_at")[:1]
    )
    handed = (
        # Created after `start`: an answer comes after its question, so nothing is missed.
        Message.objects.filter(
            scope, sender=Message.Sender.AI, reply_to__isnull=False, created_at__gte=start
        )
        .annotate(handoff=first_handoff)
        .filter(handoff__isnull=False, created_at__lt=F("handoff"))
        .order_by("conversation_id", "-created_at", "-id")
        .distinct("conversation_id")
        .values_list(*head, "outcome")
    )
    for *row, outcome in handed:
        if outcome in ANSWERING_OUTCOMES and start <= row[2] < end:
            add(row, ["handed_off"])

    _missed(found, _scope(organization_id, bot_id, channel, ""), start, end)
    return found


def _scope(organization_id: int, bot_id: int | None, channel: str | None, prefix: str) -> Q:
    """The conversations of the organization (and bot, channel), never the Playground's, seen
    from a model `prefix` away (e.g. "conversation__" from Message)."""
    scope = Q(**{f"{prefix}bot__organization_id": organization_id}) & ~Q(
        **{f"{prefix}channel": PLAYGROUND}
    )
    if bot_id is not None:
        scope &= Q(**{f"{prefix}bot_id": bot_id})
    if channel is not None:
        scope &= Q(**{f"{prefix}channel": channel})
    return scope


def _missed(found: dict[int, Question], scope: Q, start, end) -> None:
    """Conversations an agent marked "the bot should have handled this" that gave no gap
    question above: the question the bot last replied to before the handoff, else the
    customer's first message."""
    covered = {q.conversation_id for q in found.values()}
    missed = (
        Conversation.objects.filter(scope, bot_missed=True)
        .exclude(pk__in=covered)
        .annotate(handoff=Min("escalations__triggered_at"))
        .values_list("pk", "customer_id", "bot_id", "handoff")
    )
    missed = {pk: (customer_id, bot_id, handoff) for pk, customer_id, bot_id, handoff in missed}
    if not missed:
        return
    said: dict[int, list[tuple]] = defaultdict(list)
    for conversation_id, pk, text, at in (
        Message.objects.filter(conversation_id__in=list(missed), sender=Message.Sender.USER)
        .exclude(text="")
        .order_by("created_at", "id")
        .values_list("conversation_id", "id", "text", "created_at")
    ):
        said[conversation_id].append((pk, text, at))
    replied = set(
        Message.objects.filter(
            conversation_id__in=list(missed), sender=Message.Sender.AI, reply_to__isnull=False
        ).values_list("reply_to_id", flat=True)
    )
    for pk, (customer_id, bot_id, handoff) in missed.items():
        texts = said.get(pk, [])
        answered = [
            row for row in texts if row[0] in replied and (handoff is None or row[2] < handoff)
        ]
        row = answered[-1] if answered else (texts[0] if texts else None)
        if row is not None and start <= row[2] < end and row[1].strip():
            found[row[0]] = Question(
                row[0], row[1].strip(), row[2], pk, customer_id, bot_id, True, {"bot_missed"}
            )


def _scope(organization_id: int, bot_id: int | None, channel: str | None, prefix: str) -> Q:
    """The conversations of the organization (and bot, channel), never the Playground's, seen
    from a model `prefix` away (e.g. "conversation__" from Message)."""
    scope = Q(**{f"{prefix}bot__organization_id": organization_id}) & ~Q(
        **{f"{prefix}channel": PLAYGROUND}
    )
    if bot_id is not None:
        scope &= Q(**{f"{prefix}bot_id": bot_id})
    if channel is not None:
        scope &= Q(**{f"{prefix}channel": channel})
    return scope


def _missed(found: dict[int, Question], scope: Q, start, end) -> None:
    """Conversations an agent marked "the bot should have handled this" that gave no gap
    question above: the question the bot last replied to before the handoff, else the
    customer's first message."""
    covered = {q.conversation_id for q in found.values()}
    missed = (
        Conversation.objects.filter(scope, bot_missed=True)
        .exclude(pk__in=covered)
        .annotate(handoff=Min("escalations__triggered_at"))
        .values_list("pk", "customer_id", "bot_id", "handoff")
    )
    for pk, customer_id, bot_id, handoff in missed:
        texts = Message.objects.filter(conversation_id=pk, sender=Message.Sender.USER).exclude(
            text=""
        )
        replied = texts.filter(replies__sender=Message.Sender.AI)
        if handoff is not None:
            replied = replied.filter(created_at__lt=handoff)
        row = (
            replied.order_by("-created_at", "-id").values_list("id", "text", "created_at").first()
            or texts.order_by("created_at", "id").values_list("id", "text", "created_at").first()
        )
        if row is not None and start <= row[2] < end and row[1].strip():
            found[row[0]] = Question(
                row[0], row[1].strip(), row[2], pk, customer_id, bot_id, True, {"bot_missed"}
            )


# --- Vectors ----------------------------------------------------------------------------------
def vectors(bot: Bot, found: list[Question]) -> tuple[np.ndarray, np.ndarray | None]:
    """The questions embedded by the bot's model (rows in `found`'s order) and by its domain
    adapter (None without one), from GapQuestion; the missing ones embedded now and stored.
    Raises EmbeddingError when the bot's embedder cannot be reached."""
    model, adapter = bot.embedding_model_active, bot.embedding_adapter
    stored = {
        pk: (vector, adapted)
        for pk, vector, adapted in GapQuestion.objects.filter(
            message_id__in=[q.message_id for q in found], embedding_model=model, adapter=adapter
        ).values_list("message_id", "embedding", "adapter_embedding")
    }
    missing = [q for q in found if q.message_id not in stored]
    if missing:
        texts = [q.text for q in missing]
        embedded = get_embedder(model).embed(texts)
        adapted = get_embedder(adapter).embed(texts) if adapter else [None] * len(missing)
        rows = [
            GapQuestion(
                message_id=q.message_id,
                embedding_model=model,
                embedding=np.asarray(vector, dtype=np.float32).tobytes(),
                adapter=adapter,
                adapter_embedding=None
                if extra is None
                else np.asarray(extra, dtype=np.float32).tobytes(),
            )
            for q, vector, extra in zip(missing, embedded, adapted, strict=True)
        ]
        GapQuestion.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["message"],
            update_fields=["embedding_model", "embedding", "adapter", "adapter_embedding"],
        )
        stored.update((row.message_id, (row.embedding, row.adapter_embedding)) for row in rows)
    base = _unpack([stored[q.message_id][0] for q in found])
    if not adapter:
        return base, None
    return base, _unpack([stored[q.message_id][1] for q in found])


def _unpack(blobs: list) -> np.ndarray:
    """float32 rows from their bytes (psycopg hands bytea back as memoryview)."""
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.frombuffer(b"".join(bytes(b) for b in blobs), dtype=np.float32).reshape(
        len(blobs), -1
    )


def vectors_prepare(*, hours: int = 48) -> int:
    """Embed the gap questions of the last `hours` that have no vector yet, every bot of every
    organization (the worker, every ten minutes: analytics/tasks.py), so that a page load or
    the digest finds them ready. Returns how many it embedded. A bot whose embedder is down is
    left for the next run."""
    end = timezone.now()
    done = 0
    for organization_id in Organization.objects.values_list("pk", flat=True):
        found = questions(
            organization_id=organization_id, start=end - timedelta(hours=hours), end=end
        )
        by_bot: dict[int, list[Question]] = defaultdict(list)
        for question in found.values():
            by_bot[question.bot_id].append(question)
        for bot in Bot.objects.filter(pk__in=list(by_bot)):
            model, adapter = bot.embedding_model_active, bot.embedding_adapter
            have = set(
                GapQuestion.objects.filter(
                    message_id__in=[q.message_id for q in by_bot[bot.pk]],
                    embedding_model=model,
                    adapter=adapter,
                ).values_list("message_id", flat=True)
            )
            missing = [q for q in by_bot[bot.pk] if q.message_id not in have]
            if not missing:
                continue
            try:
                vectors(bot, missing)
            except EmbeddingError as exc:
                log.warning("gap questions of bot %s not embedded: %s", bot.pk, exc)
                continue
            done += len(missing)
    return done


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
    titles = Chunk.objects.filter(
        bot=bot, embedding_model=bot.embedding_model_active, kind=Chunk.Kind.TITLE
    )
    ids = list(titles.order_by("id").values_list("id", flat=True))
    if len(ids) > TITLE_SAMPLE:
        step = len(ids) / TITLE_SAMPLE
        ids = [ids[int(i * step)] for i in range(TITLE_SAMPLE)]
    if len(ids) < MIN_TITLES:
        return DEFAULT_THRESHOLD, "default"
    vectors_ = np.asarray(
        list(titles.filter(id__in=ids).values_list("embedding", flat=True)), dtype=np.float32
    )
    similar = vectors_ @ vectors_.T
    np.fill_diagonal(similar, -np.inf)
    nearest = float(np.median(similar.max(axis=1)))
    strong = calibration(bot, knowledge_version(bot))[0].strong
    return round(max(nearest, strong), 4), "knowledge"


def communities(base: np.ndarray, bar: float) -> list[list[int]]:
    """Groups of row indices, largest first, each led by its centre (first index)."""
    if len(base) == 0:
        return []
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
    """The conversation's history page once it exists (issue 16's history), else the console."""
    try:
        return reverse("history_conversation", args=[organization_slug, conversation_id])
    except NoReverseMatch:
        return reverse("console_conversation", args=[organization_slug, conversation_id])


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
