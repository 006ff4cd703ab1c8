"""Writes for knowledge: accept an upload, add a web source, queue and sweep syncs, delete a
source. The sync itself, which reads, embeds and writes a source's documents, is
knowledge/sync.py.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from bots.models import Bot
from knowledge import intents, tuning, web
from knowledge.adaptation import adapter_retrain
from knowledge.models import Document, EmbeddingCache, KnowledgeSource, TeamAnswer
from knowledge.parsers import ParseError, check_upload, detect_format
from knowledge.signals import knowledge_changed_notify
from knowledge.sync import chunks_analyze, sha256, source_mark, source_sync
from knowledge.team import ANSWER_MAX, QUESTION_MAX, TEAM_SOURCE_NAME

# chunks_analyze and source_sync are part of this module's face: commands, tasks and other apps
# reach every knowledge write through knowledge.services.
__all__ = [
    "chunks_analyze",
    "enqueue_source_sync",
    "source_add_url",
    "source_delete",
    "source_resync",
    "source_sync",
    "source_upload",
    "source_url_validate",
    "sources_enqueue_due",
    "sources_requeue_stalled",
    "team_answer_delete",
    "team_answer_save",
    "upload_check",
]

log = logging.getLogger(__name__)


def enqueue_source_sync(source_id: int) -> None:
    # By dotted path: knowledge/tasks.py imports this module, never the other way round.
    async_task("knowledge.tasks.source_sync", source_id, task_name=f"knowledge-sync-{source_id}")


def source_upload(
    *,
    bot: Bot,
    filename: str,
    data: bytes,
    source: KnowledgeSource | None = None,
    name: str = "",
    sync_now: bool = False,
) -> KnowledgeSource:
    """Accept a file as a new source, or as the new version of `source`, to be read later.

    Only cheap checks run here (size, empty, a format recognised by name or content): reading
    a file can take a crafted one minutes, so the worker does it in a child process it can
    stop (knowledge/isolation.py). The file waits as the source's candidate, status "checking";
    a file that fails to parse within its budget is refused there with the line, field or
    limit at fault, and the previous version keeps serving. With sync_now (commands, tests) the
    check and sync run before this returns, and a refusal raises ParseError.
    """
    fmt = upload_check(filename=filename, data=data)
    with transaction.atomic():
        if source is None:
            source = KnowledgeSource(bot=bot, kind=KnowledgeSource.Kind.UPLOAD)
        else:
            source = KnowledgeSource.objects.select_for_update().get(pk=source.pk, bot=bot)
            if source.kind == KnowledgeSource.Kind.TEAM:
                raise ParseError(
                    f"{source.name} is written by saving answers from conversations, "
                    "not by uploading a file."
                )
        source.name = name or source.name or filename
        source.candidate = data
        source.candidate_filename = filename
        source.candidate_format = fmt
        source.candidate_checksum = sha256(data)
        source.status = KnowledgeSource.Status.CHECKING
        source.error = ""
        source.progress_done, source.progress_total = 0, 0
        source.save()
        if not sync_now:
            transaction.on_commit(lambda: enqueue_source_sync(source.pk))
    if sync_now:
        source_sync(source=source)
        source.refresh_from_db()
    return source


def upload_check(*, filename: str, data: bytes) -> str:
    """The checks cheap enough for a web request: the size, something in it, a known format."""
    check_upload(data)
    return detect_format(filename, data)


def source_resync(*, source: KnowledgeSource) -> None:
    """Queue a sync of the source's current content (after a failure, or to retry)."""
    source_mark(source, status=KnowledgeSource.Status.PENDING, error="")
    transaction.on_commit(lambda: enqueue_source_sync(source.pk))


def source_delete(*, source: KnowledgeSource) -> None:
    bot = source.bot
    with transaction.atomic():
        had_intents = source.documents.filter(kind=Document.Kind.INTENT).exists()
        if source.kind == KnowledgeSource.Kind.TEAM:
            # Its content is these rows: left behind, the next saved answer would bring them back.
            TeamAnswer.objects.filter(bot=bot).delete()
        source.delete()
    if had_intents:
        intents.intent_model_train(bot=bot, model=bot.embedding_model_active)
    adapter_retrain(bot=bot)
    # Its chunks are gone at once (search reads only existing rows); the keyword index and the
    # ranking choice are rebuilt in the worker.
    tuning.profile_tune_later(bot=bot)
    knowledge_changed_notify(bot=bot)


# --- Answers from the team (knowledge/team.py) ------------------------------------------------
def team_answer_save(
    *,
    bot: Bot,
    question: str,
    answer: str,
    conversation_id: int | None = None,
    user=None,
) -> TeamAnswer:
    """Save an agent's answer as an FAQ of the bot's "Answers from the team" source (created on
    the first one) and queue the source's sync on commit, the worker path every source takes.

    Raises ValidationError, keyed by field, for an empty or too long question or answer, or a
    question the team already answered (the FAQ format keeps one answer per question). Locks
    the team source's row, so two agents saving at once cannot both add the same question.
    """
    question, answer = " ".join(question.split()), answer.strip()
    errors = {}
    if not question:
        errors["question"] = "Write the customer's question."
    elif len(question) > QUESTION_MAX:
        errors["question"] = f"Keep the question under {QUESTION_MAX} characters."
    if not answer:
        errors["answer"] = "Write the answer the bot should give."
    elif len(answer) > ANSWER_MAX:
        errors["answer"] = f"Keep the answer under {ANSWER_MAX} characters."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        source = _team_source_lock(bot=bot)
        # Compared as the FAQ parser keys its rows (casefold), so a sync never meets a duplicate.
        key = question.casefold()
        same = next(
            (
                a
                for a in TeamAnswer.objects.filter(bot=bot).only("question")
                if a.question.casefold() == key
            ),
            None,
        )
        if same is not None:
            raise ValidationError(
                {
                    "question": f"The team already answered “{same.question}”: delete that answer "
                    "on the bot's knowledge page first, or ask it differently."
                }
            )
        saved = TeamAnswer.objects.create(
            bot=bot,
            question=question,
            answer=answer,
            conversation_id=conversation_id,
            created_by=user,
        )
        _team_source_queue(source)
    return saved


def team_answer_delete(*, answer: TeamAnswer) -> None:
    """Remove a team answer; the team source syncs again without it (in the worker)."""
    with transaction.atomic():
        source = _team_source_lock(bot=answer.bot)
        answer.delete()
        _team_source_queue(source)


def _team_source_lock(*, bot: Bot) -> KnowledgeSource:
    KnowledgeSource.objects.get_or_create(
        bot=bot,
        kind=KnowledgeSource.Kind.TEAM,
        defaults={"name": TEAM_SOURCE_NAME, "format": "faq_csv"},
    )
    return KnowledgeSource.objects.select_for_update().get(bot=bot, kind=KnowledgeSource.Kind.TEAM)


def _team_source_queue(source: KnowledgeSource) -> None:
    source.status = KnowledgeSource.Status.PENDING
    source.error = ""
    source.progress_done, source.progress_total = 0, 0
    source.save(update_fields=["status", "error", "progress_done", "progress_total", "updated_at"])
    transaction.on_commit(lambda: enqueue_source_sync(source.pk))


# --- Web page and sitemap sources -------------------------------------------------------------
def source_url_validate(*, bot: Bot, url: str, source: KnowledgeSource | None = None) -> str:
    """The address cleaned (knowledge/web.py), or a ValidationError: malformed, not http(s), or
    already a source of this bot (its pages would be retrieved twice)."""
    url = web.url_clean(url)
    others = bot.knowledge_sources.filter(url=url)
    if source is not None and source.pk:
        others = others.exclude(pk=source.pk)
    if others.exists():
        raise ValidationError(f"{url} is already a source of this bot.")
    return url


def source_add_url(
    *,
    bot: Bot,
    url: str,
    kind: str,
    name: str = "",
    sync_interval: timedelta | None = None,
    source: KnowledgeSource | None = None,
) -> KnowledgeSource:
    """Add a web page or sitemap source (or point `source` at this address) and queue its
    first sync on commit.

    Only the address is checked here; whether it answers is the worker's business: a site
    that is down marks the source failed with the reason, and it is retried later.
    """
    if kind not in (KnowledgeSource.Kind.URL, KnowledgeSource.Kind.SITEMAP):
        raise ValidationError(f'Kind must be "url" or "sitemap", not "{kind}".')
    url = source_url_validate(bot=bot, url=url, source=source)
    with transaction.atomic():
        source = source or KnowledgeSource(bot=bot)
        source.bot, source.kind, source.url = bot, kind, url
        source.name = (name or source.name or url.split("://", 1)[1])[:200]
        if sync_interval is not None:
            source.sync_interval = sync_interval
        source.status = KnowledgeSource.Status.PENDING
        source.error = ""
        source.failure_count = 0
        source.progress_done, source.progress_total = 0, 0
        # Due now: should the enqueue below be lost, the schedule picks the source up.
        source.next_sync_at = timezone.now()
        source.save()
        transaction.on_commit(lambda: enqueue_source_sync(source.pk))
    return source


# A sync queued or running this long ago was lost (a worker killed past its retries).
STALE_SYNC = timedelta(hours=1)
# A sync with no heartbeat for this long lost its worker (15 beats of config/heartbeat.py).
SYNC_LEASE = timedelta(seconds=30)
# Vectors a sync saved and never used (its source deleted or changed meanwhile) go after this.
EMBEDDING_CACHE_KEEP = timedelta(days=1)


def sources_requeue_stalled() -> int:
    """Queue again every sync whose worker died (status syncing, no heartbeat for SYNC_LEASE);
    it resumes from the vectors already embedded. Returns how many.

    A sync in its final transaction holds its source's row, which its heartbeat waits for:
    such a row is locked, and skipped here rather than taken for stalled.
    """
    now = timezone.now()
    stalled = _sources_queue(
        KnowledgeSource.objects.filter(
            status=KnowledgeSource.Status.SYNCING, updated_at__lt=now - SYNC_LEASE
        ),
        now=now,
    )
    EmbeddingCache.objects.filter(created_at__lt=now - EMBEDDING_CACHE_KEEP).delete()
    if stalled:
        log.info("re-queued stalled knowledge syncs %s", stalled)
    return len(stalled)


def sources_enqueue_due() -> int:
    """Queue a sync of every web source that is due; run by the schedule every 5 minutes.

    Each is marked pending in the same transaction, so the next run does not queue it again
    while it waits for a worker; one pending or syncing for over an hour counts as lost.
    """
    now = timezone.now()
    busy = [KnowledgeSource.Status.PENDING, KnowledgeSource.Status.SYNCING]
    due = _sources_queue(
        KnowledgeSource.objects.filter(
            kind__in=[KnowledgeSource.Kind.URL, KnowledgeSource.Kind.SITEMAP],
            next_sync_at__lte=now,
        ).filter(~Q(status__in=busy) | Q(updated_at__lt=now - STALE_SYNC)),
        now=now,
    )
    return len(due)


def _sources_queue(sources: QuerySet[KnowledgeSource], *, now: datetime) -> list[int]:
    """Mark these sources pending and queue their syncs on commit, skipping rows another
    transaction holds (a sync in its final transaction, or another sweep). Returns their ids."""
    with transaction.atomic():
        ids = list(sources.select_for_update(skip_locked=True).values_list("pk", flat=True))
        KnowledgeSource.objects.filter(pk__in=ids).update(
            status=KnowledgeSource.Status.PENDING, updated_at=now
        )
        for pk in ids:
            transaction.on_commit(partial(enqueue_source_sync, pk))
    return ids
