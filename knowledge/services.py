"""Writes for knowledge: accept an upload, sync a source, delete a source.

Sync is idempotent and atomic. Documents whose checksum is unchanged are skipped; changed ones
get their chunks replaced and removed ones are deleted, all in one transaction at the end. The
slow part (embedding) happens before that transaction, so a failure anywhere (a bad file, the
embedding endpoint down, the worker killed) leaves the previous version serving untouched.

A sync holds a lease: its source's `updated_at` beats while it runs (config/heartbeat.py). One
whose worker died stops beating and is queued again within a minute (sources_requeue_stalled,
swept every few seconds by the serving process); it resumes from the vectors already embedded,
which each batch saves at once (EmbeddingCache) rather than only in the final transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from functools import partial

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from bots.models import Bot
from config.heartbeat import heartbeat
from config.links import safe_http_url
from knowledge import intents, web
from knowledge.chunking import ChunkDraft, chunk_document
from knowledge.embeddings import EmbeddingError, get_embedder
from knowledge.isolation import parse_budget, parse_isolated
from knowledge.models import Chunk, Document, EmbeddingCache, KnowledgeSource
from knowledge.parsers import (
    MAX_UPLOAD_BYTES,
    ParsedDocument,
    ParseError,
    detect_format,
)
from knowledge.signals import knowledge_changed_notify

log = logging.getLogger(__name__)

EMBED_BATCH = 256
# After writing this many chunks, refresh the planner's statistics at once: with stale ones
# (before autovacuum gets there) PostgreSQL can skip the HNSW index and sort every chunk.
ANALYZE_AFTER = 1_000
# all-MiniLM-L6-v2 reads at most 256 word pieces; a longer chunk's end is never embedded.
# ~200 tokens plus the title prefix fits (about the ~800 characters of the benchmark reference).
CHUNK_TOKENS = 200


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_checksum(doc: ParsedDocument) -> str:
    fields = [
        doc.title,
        doc.body,
        doc.url,
        doc.category,
        doc.product,
        doc.language,
        doc.kind,
        doc.patterns,
        doc.responses,
    ]
    return _sha256(json.dumps(fields, ensure_ascii=False).encode())


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
        source.name = name or source.name or filename
        source.candidate = data
        source.candidate_filename = filename
        source.candidate_format = fmt
        source.candidate_checksum = _sha256(data)
        source.status = KnowledgeSource.Status.CHECKING
        source.error = ""
        source.progress_done, source.progress_total = 0, 0
        source.save()
        if not sync_now:
            from knowledge.tasks import enqueue_source_sync

            transaction.on_commit(lambda: enqueue_source_sync(source.pk))
    if sync_now:
        source_sync(source=source)
        source.refresh_from_db()
    return source


def upload_check(*, filename: str, data: bytes) -> str:
    """The checks cheap enough for a web request: the size, something in it, a known format."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ParseError(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; "
            f"the limit is {MAX_UPLOAD_BYTES // 1024 // 1024} MB."
        )
    if not data.strip():
        raise ParseError("The file is empty.")
    return detect_format(filename, data)


def _upload_documents(source: KnowledgeSource) -> list[ParsedDocument]:
    """Read the source's candidate, which becomes its content if it passes, else its content.

    A refused candidate is dropped and the reason recorded on the source (ParseError raised);
    its documents, chunks and content are untouched, so it serves as before and stays ready
    (failed when it had no previous version).
    """
    if not source.candidate_checksum:
        if source.content is None:
            raise ParseError("Nothing was uploaded for this source; upload a file.")
        return parse_isolated(
            filename=source.filename,
            data=bytes(source.content),
            format=source.format,
            budget=parse_budget(),
        )
    checksum, filename = source.candidate_checksum, source.candidate_filename
    try:
        documents = parse_isolated(
            filename=filename,
            data=bytes(source.candidate),
            format=source.candidate_format,
            budget=parse_budget(),
        )
    except ParseError as exc:
        serving = (
            f" The previous version ({source.filename}) keeps serving." if source.content else ""
        )
        error = f"{filename} was refused: {exc}{serving}"
        # With a previous version the source is still ready: it answers from that version.
        status = KnowledgeSource.Status.READY if source.content else KnowledgeSource.Status.FAILED
        if not _candidate_clear(source, checksum, status=status, error=error):
            raise _Superseded from None
        raise _Refused(error) from None
    promoted = _candidate_clear(
        source,
        checksum,
        content=source.candidate,
        content_checksum=checksum,
        filename=filename,
        format=source.candidate_format,
    )
    if not promoted:  # a newer upload arrived meanwhile: its own task reads and syncs it
        raise _Superseded
    return documents


def _candidate_clear(source: KnowledgeSource, checksum: str, **fields) -> bool:
    """Clear the candidate with these changes, unless a newer upload has replaced it."""
    cleared = dict(
        candidate=None, candidate_filename="", candidate_format="", candidate_checksum=""
    )
    updated = KnowledgeSource.objects.filter(pk=source.pk, candidate_checksum=checksum).update(
        **cleared, **fields, updated_at=timezone.now()
    )
    if updated:
        for key, value in {**cleared, **fields}.items():
            setattr(source, key, value)
    return bool(updated)


class _Superseded(Exception):
    """A newer upload replaced the candidate this sync was reading."""


class _Refused(ParseError):
    """A candidate that failed to parse, already recorded on its source."""


def source_resync(*, source: KnowledgeSource) -> None:
    """Queue a sync of the source's current content (after a failure, or to retry)."""
    from knowledge.tasks import enqueue_source_sync

    _mark(source, status=KnowledgeSource.Status.PENDING, error="")
    transaction.on_commit(lambda: enqueue_source_sync(source.pk))


def source_sync(*, source: KnowledgeSource, documents: list[ParsedDocument] | None = None) -> None:
    """Bring the source's documents and chunks in line with its content. Safe to repeat.

    A URL or sitemap source is fetched first (knowledge/web.py). A site that fails marks the
    source failed with the reason and schedules a retry, without raising: it is not a bug.
    """
    with heartbeat(KnowledgeSource, source.pk, status=KnowledgeSource.Status.SYNCING):
        _sync(source=source, documents=documents)


def _sync(*, source: KnowledgeSource, documents: list[ParsedDocument] | None) -> None:
    bot = source.bot
    note = ""
    try:
        if documents is None and source.kind != KnowledgeSource.Kind.UPLOAD:
            _mark(source, status=KnowledgeSource.Status.SYNCING, error="")
            documents, note = web.source_fetch(
                source=source,
                progress=lambda done, total: _mark(
                    source, progress_done=done, progress_total=total
                ),
            )
        elif documents is None:
            documents = _upload_documents(source)
        _mark(source, status=KnowledgeSource.Status.SYNCING, error="")
        try:
            _apply(source, bot, documents)
        except _ModelSwitched:
            bot.refresh_from_db()
            _apply(source, bot, documents)
    except web.FetchError as exc:
        log.info("knowledge source %s: %s", source.pk, exc)
        _mark(
            source, status=KnowledgeSource.Status.FAILED, error=str(exc), **web.retry_later(source)
        )
        return
    except _Superseded:
        return
    except ParseError as exc:
        if not isinstance(exc, _Refused):
            _mark(source, status=KnowledgeSource.Status.FAILED, error=str(exc))
        raise
    except Exception as exc:
        log.exception("sync of knowledge source %s failed", source.pk)
        _mark(
            source,
            status=KnowledgeSource.Status.FAILED,
            error=f"Sync failed: {exc}",
            **web.retry_later(source),
        )
        raise
    if source.kind != KnowledgeSource.Kind.UPLOAD:
        _mark(source, error=note, failure_count=0)


class _ModelSwitched(Exception):
    """The bot's active model changed while a sync was embedding."""


def _mark(source: KnowledgeSource, **fields) -> None:
    # Status and progress are written on their own, outside the sync's transaction, so the
    # page shows them while the sync runs and they survive its rollback.
    KnowledgeSource.objects.filter(pk=source.pk).update(**fields, updated_at=timezone.now())
    for name, value in fields.items():
        setattr(source, name, value)


def _apply(source: KnowledgeSource, bot: Bot, documents: list[ParsedDocument]) -> None:
    model = bot.embedding_model_active
    existing = {
        d.external_id: d
        for d in Document.objects.filter(source=source).only(
            "id", "external_id", "checksum", "version", "kind"
        )
    }
    wanted = {doc.external_id: (doc, document_checksum(doc)) for doc in documents}
    changed = {
        key
        for key, (_doc, checksum) in wanted.items()
        if key not in existing or existing[key].checksum != checksum
    }
    # Unchanged documents still need chunks of the active model if they lack them (a sync
    # interrupted earlier, or the first sync after the bot switched models).
    embedded = set(
        Chunk.objects.filter(document__source=source, embedding_model=model)
        .values_list("document__external_id", flat=True)
        .distinct()
    )
    to_embed = [key for key in wanted if key in changed or key not in embedded]
    removed = [key for key in existing if key not in wanted]
    drafts = {key: _drafts(wanted[key][0]) for key in to_embed}
    texts = [draft.embed_text for key in to_embed for draft in drafts[key]]
    # progress_done is set by the embedding: from what an interrupted run saved, not from 0.
    _mark(source, progress_total=len(texts), **({} if texts else {"progress_done": 0}))
    vectors = _embed_with_progress(source, model, texts)
    # New chunks join the bot's current adapter space too; a retrain follows if articles changed.
    adapter = bot.embedding_adapter
    adapted = _embed_adapter(adapter, texts)
    if adapted is None:
        adapter = ""

    with transaction.atomic():
        # One sync per source at a time; a second one waits here and then finds little to do.
        KnowledgeSource.objects.select_for_update().get(pk=source.pk)
        # A model switch (knowledge/switch.py) may have committed while this sync embedded:
        # chunks of the old model would be invisible, so the sync starts over with the new one.
        # (An adapter swapped meanwhile needs no restart: chunks of an old adapter are scored
        # by the base model alone, and the retrain this sync queues covers them.)
        locked = Bot.objects.select_for_update().get(pk=bot.pk)
        if locked.embedding_model_active != model:
            raise _ModelSwitched
        Document.objects.filter(id__in=[existing[key].id for key in removed]).delete()
        new_chunks, offset = [], 0
        for key in to_embed:
            doc, checksum = wanted[key]
            record = _document_save(source, bot, doc, checksum, existing.get(key))
            stale = Chunk.objects.filter(document=record)
            if key not in changed:
                stale = stale.filter(embedding_model=model)  # keep other models' (re-embed)
            stale.delete()
            for draft in drafts[key]:
                new_chunks.append(
                    Chunk(
                        document=record,
                        bot=bot,
                        position=draft.position,
                        kind=draft.kind,
                        heading=draft.heading[:500],
                        text=draft.text,
                        embed_text=draft.embed_text,
                        embedding_model=model,
                        embedding=vectors[offset],
                        adapter=adapter,
                        adapter_embedding=adapted[offset] if adapter else None,
                    )
                )
                offset += 1
        Chunk.objects.bulk_create(new_chunks, batch_size=1000)
        now = timezone.now()
        KnowledgeSource.objects.filter(pk=source.pk).update(
            status=KnowledgeSource.Status.READY,
            error="",
            document_count=Document.objects.filter(source=source).count(),
            chunk_count=Chunk.objects.filter(document__source=source, embedding_model=model)
            .exclude(kind=Chunk.Kind.TITLE)
            .count(),
            last_synced_at=now,
            updated_at=now,
            next_sync_at=(now + source.sync_interval) if source.url else None,
        )
    # The new version is served: its saved vectors are no longer needed to resume.
    EmbeddingCache.objects.filter(model=model, text_hash__in=_hashes(texts)).delete()
    if len(new_chunks) >= ANALYZE_AFTER:
        chunks_analyze()
    intents_touched = any(wanted[k][0].kind == Document.Kind.INTENT for k in to_embed) or any(
        existing[k].kind == Document.Kind.INTENT for k in removed
    )
    if intents_touched:
        # The classifier learns from the chunks just written, so it is trained right after.
        intents.intent_model_train(bot=bot, model=model)
    articles_touched = any(wanted[k][0].kind != Document.Kind.INTENT for k in to_embed) or any(
        existing[k].kind != Document.Kind.INTENT for k in removed
    )
    if articles_touched:
        adapter_retrain(bot=bot)  # articles changed: the adapter learns them in the worker
    if to_embed or removed:
        knowledge_changed_notify(bot=bot)
    source.refresh_from_db()


def adapter_retrain(*, bot: Bot) -> None:
    """Queue the bot's adapter training (knowledge/adaptation.py). The task itself skips the
    work when the adapter already matches the bot's articles, so repeats are cheap."""
    if not settings.KNOWLEDGE_ADAPTER and not bot.embedding_adapter:
        return
    from knowledge.tasks import enqueue_adapter_train

    transaction.on_commit(lambda: enqueue_adapter_train(bot.pk))


def _embed_adapter(adapter: str, texts: list[str]):
    if not adapter or not texts:
        return None
    try:
        embedder = get_embedder(adapter)
        return np.concatenate(
            [embedder.embed(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
        )
    except EmbeddingError as exc:
        # The adapter is an improvement, never a dependency: chunks without its vector are
        # scored by the base model alone until the next retrain covers them.
        log.warning("adapter %s unavailable during sync: %s", adapter, exc)
        return None


def chunks_analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE knowledge_chunk")


def _drafts(doc: ParsedDocument) -> list[ChunkDraft]:
    drafts = chunk_document(doc, target_tokens=CHUNK_TOKENS)
    if doc.kind != Document.Kind.INTENT and doc.title:
        # A title vector of its own: retrieval scores an article by its best passage and by
        # how well the question matches what the article is about (knowledge/retrieval.py).
        drafts.append(
            ChunkDraft(
                position=len(drafts),
                text=doc.title,
                embed_text=doc.title,
                kind=Chunk.Kind.TITLE,
            )
        )
    return drafts


def _document_save(source, bot, doc: ParsedDocument, checksum: str, record: Document | None):
    values = dict(
        kind=doc.kind,
        title=doc.title[:500],
        body=doc.body,
        # Parsers already keep only http(s); this is the last gate before a row (web.py sets
        # addresses after parsing).
        url=safe_http_url(doc.url)[:1000],
        category=doc.category[:200],
        product=doc.product[:200],
        language=doc.language[:10],
        responses=doc.responses,
        checksum=checksum,
    )
    if record is None:
        return Document.objects.create(
            bot=bot, source=source, external_id=doc.external_id, **values
        )
    bump = record.checksum != checksum
    for field, value in values.items():
        setattr(record, field, value)
    if bump:
        record.version += 1
    record.save(update_fields=[*values, "version", "updated_at"])
    return record


def _embed_with_progress(source: KnowledgeSource, model: str, texts: list[str]):
    """The texts' vectors: those an interrupted run of this sync saved, then the rest embedded
    batch by batch, each batch saved at once (committed outside the sync's transaction), so a
    sync killed now resumes from here."""
    if not texts:  # nothing changed: no need to load the model at all
        return np.zeros((0, 0), dtype=np.float32)
    hashes = _hashes(texts)
    vectors = {
        text_hash: np.frombuffer(bytes(vector), dtype=np.float32)
        for text_hash, vector in EmbeddingCache.objects.filter(
            model=model, text_hash__in=set(hashes)
        ).values_list("text_hash", "vector")
    }
    missing = list({h: i for i, h in enumerate(hashes) if h not in vectors}.values())
    _mark(source, progress_done=len(texts) - len(missing))
    if missing:
        embedder = get_embedder(model)
        for start in range(0, len(missing), EMBED_BATCH):
            batch = missing[start : start + EMBED_BATCH]
            embedded = np.asarray(embedder.embed([texts[i] for i in batch]), dtype=np.float32)
            EmbeddingCache.objects.bulk_create(
                [
                    EmbeddingCache(model=model, text_hash=hashes[i], vector=vector.tobytes())
                    for i, vector in zip(batch, embedded, strict=True)
                ],
                ignore_conflicts=True,
            )
            vectors.update((hashes[i], vector) for i, vector in zip(batch, embedded, strict=True))
            done = sum(1 for h in hashes if h in vectors)
            _mark(source, progress_done=done)
    return np.stack([vectors[h] for h in hashes])


def _hashes(texts: list[str]) -> list[str]:
    return [_sha256(text.encode()) for text in texts]


def source_delete(*, source: KnowledgeSource) -> None:
    bot = source.bot
    with transaction.atomic():
        had_intents = source.documents.filter(kind=Document.Kind.INTENT).exists()
        source.delete()
    if had_intents:
        intents.intent_model_train(bot=bot, model=bot.embedding_model_active)
    adapter_retrain(bot=bot)
    knowledge_changed_notify(bot=bot)


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
        from knowledge.tasks import enqueue_source_sync

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
    from knowledge.tasks import enqueue_source_sync

    now = timezone.now()
    with transaction.atomic():
        stalled = list(
            KnowledgeSource.objects.select_for_update(skip_locked=True)
            .filter(status=KnowledgeSource.Status.SYNCING, updated_at__lt=now - SYNC_LEASE)
            .values_list("pk", flat=True)
        )
        KnowledgeSource.objects.filter(pk__in=stalled).update(
            status=KnowledgeSource.Status.PENDING, updated_at=now
        )
        for pk in stalled:
            transaction.on_commit(partial(enqueue_source_sync, pk))
    EmbeddingCache.objects.filter(created_at__lt=now - EMBEDDING_CACHE_KEEP).delete()
    if stalled:
        log.info("re-queued stalled knowledge syncs %s", stalled)
    return len(stalled)


def sources_enqueue_due() -> int:
    """Queue a sync of every web source that is due; run by the schedule every 5 minutes.

    Each is marked pending in the same transaction, so the next run does not queue it again
    while it waits for a worker; one pending or syncing for over an hour counts as lost.
    """
    from knowledge.tasks import enqueue_source_sync

    now = timezone.now()
    busy = [KnowledgeSource.Status.PENDING, KnowledgeSource.Status.SYNCING]
    with transaction.atomic():
        due = list(
            KnowledgeSource.objects.select_for_update(skip_locked=True)
            .filter(
                kind__in=[KnowledgeSource.Kind.URL, KnowledgeSource.Kind.SITEMAP],
                next_sync_at__lte=now,
            )
            .filter(~Q(status__in=busy) | Q(updated_at__lt=now - STALE_SYNC))
            .values_list("pk", flat=True)
        )
        KnowledgeSource.objects.filter(pk__in=due).update(
            status=KnowledgeSource.Status.PENDING, updated_at=now
        )
        for pk in due:
            transaction.on_commit(partial(enqueue_source_sync, pk))
    return len(due)
