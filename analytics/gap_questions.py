"""The questions behind the knowledge gaps (analytics/gaps.py): which customer messages count
(analytics.definitions.GAP_KINDS, read from what the pipeline and the customer left on the
bot's answers), and their vectors in the bot's own embedding space, stored once
(analytics.GapQuestion).

A gap question is the customer message a weak answer replied to, asked in the period
(settings.TIME_ZONE days), never in the Playground. Every question of a conversation an agent
marked "the bot should have handled this" is one too; such a conversation with no weak answer
gives the question the bot last replied to before the handoff (else the customer's first
message).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from django.db.models import F, Min, OuterRef, Q, Subquery
from django.utils import timezone

from analytics.definitions import ANSWERING_OUTCOMES, PLAYGROUND, gap_kinds
from analytics.models import GapQuestion
from bots.models import Bot, Organization
from conversations.models import Conversation, Message
from escalation.models import EscalationLog
from knowledge.embeddings import EmbeddingError, get_embedder

log = logging.getLogger(__name__)

# The answers analytics.definitions.gap_kinds gives a kind to, as a database filter: a prefilter
# only, each row's kinds are then read by gap_kinds itself.
WEAK_FILTER = (
    Q(outcome__in=("clarified", "low_confidence"))
    | Q(trace__category="out_of_scope")
    | Q(feedback=-1)
    | Q(confirmed=False)
    | Q(trace__action_failed=True)
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
    # Complete answers after `start` (an answer follows its question): the (state, created_at)
    # index narrows the scan before the join to the questions.
    answers = Message.objects.filter(
        scope,
        asked,
        WEAK_FILTER,
        sender=Message.Sender.AI,
        state=Message.State.COMPLETE,
        created_at__gte=start,
    )
    for *row, outcome, category, feedback, confirmed, failed in answers.values_list(
        *head, "outcome", "trace__category", "feedback", "confirmed", "trace__action_failed"
    ):
        kinds = gap_kinds(
            outcome=outcome,
            category=category,
            feedback=feedback,
            confirmed=confirmed,
            action_failed=failed,
        )
        add(row, kinds)

    # The last answer before the conversation's first handoff, when the bot did answer.
    first_handoff = Subquery(
        EscalationLog.objects.filter(conversation_id=OuterRef("conversation_id"))
        .order_by("triggered_at")
        .values("triggered_at")[:1]
    )
    handed = (
        # Created after `start`: an answer comes after its question, so nothing is missed.
        Message.objects.filter(
            scope,
            sender=Message.Sender.AI,
            state=Message.State.COMPLETE,
            reply_to__isnull=False,
            created_at__gte=start,
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
