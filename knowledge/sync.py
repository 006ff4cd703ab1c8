"""Sync a source: bring its documents and chunks in line with its content.

Sync is idempotent and atomic. Documents whose checksum is unchanged are skipped; changed ones
get their chunks replaced and removed ones are deleted, all in one transaction at the end. The
slow part (embedding) happens before that transaction, so a failure anywhere (a bad file, the
embedding endpoint down, the worker killed) leaves the previous version serving untouched.

A sync holds a lease: its source's `updated_at` beats while it runs (config/heartbeat.py). One
whose worker died stops beating and is queued again within a minute (sources_requeue_stalled in
knowledge/services.py, swept every few seconds by the serving process); it resumes from the
vectors already embedded, which each batch saves at once (EmbeddingCache) rather than only in
the final transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from bots.models import Bot
from config.heartbeat import heartbeat
from config.links import safe_http_url
from knowledge import intents, team, tuning, web
from knowledge.adaptation import adapter_retrain
from knowledge.chunking import ChunkDraft, chunk_document
from knowledge.embeddings import EMBED_BATCH, EmbeddingError, embed_all, get_embedder
from knowledge.isolation import parse_budget, parse_isolated
from knowledge.models import Chunk, Document, EmbeddingCache, KnowledgeSource
from knowledge.parsers import ParsedDocument, ParseError
from knowledge.signals import knowledge_changed_notify

log = logging.getLogger(__name__)

# After writing this many chunks, refresh the planner's statistics at once: with stale ones
# (before autovacuum gets there) PostgreSQL can skip the HNSW index and sort every chunk.
ANALYZE_AFTER = 1_000
# all-MiniLM-L6-v2 reads at most 256 word pieces; a longer chunk's end is never embedded.
# ~200 tokens plus the title prefix fits (about the ~800 characters of the benchmark reference).
CHUNK_TOKENS = 200


def sha256(data: bytes) -> str:
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
    return sha256(json.dumps(fields, ensure_ascii=False).encode())


def source_mark(source: KnowledgeSource, **fields) -> None:
    """Write status and progress fields at once, outside any sync's transaction, so the page
    shows them while the sync runs and they survive its rollback."""
    KnowledgeSource.objects.filter(pk=source.pk).update(**fields, updated_at=timezone.now())
    for name, value in fields.items():
        setattr(source, name, value)


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
        if documents is None and source.kind == KnowledgeSource.Kind.TEAM:
            documents = team.team_documents(source)
        elif documents is None and source.kind != KnowledgeSource.Kind.UPLOAD:
            source_mark(source, status=KnowledgeSource.Status.SYNCING, error="")
            documents, note = web.source_fetch(
                source=source,
                progress=lambda done, total: source_mark(
                    source, progress_done=done, progress_total=total
                ),
            )
        elif documents is None:
            documents = _upload_documents(source)
        source_mark(source, status=KnowledgeSource.Status.SYNCING, error="")
        try:
            _apply(source, bot, documents)
        except _ModelSwitched:
            bot.refresh_from_db()
            _apply(source, bot, documents)
    except web.FetchError as exc:
        log.info("knowledge source %s: %s", source.pk, exc)
        source_mark(
            source, status=KnowledgeSource.Status.FAILED, error=str(exc), **web.retry_later(source)
        )
        return
    except _Superseded:
        return
    except ParseError as exc:
        if not isinstance(exc, _Refused):
            source_mark(source, status=KnowledgeSource.Status.FAILED, error=str(exc))
        raise
    except Exception as exc:
        log.exception("sync of knowledge source %s failed", source.pk)
        source_mark(
            source,
            status=KnowledgeSource.Status.FAILED,
            error=f"Sync failed: {exc}",
            **web.retry_later(source),
        )
        raise
    if source.kind != KnowledgeSource.Kind.UPLOAD:
        source_mark(source, error=note, failure_count=0)


class _ModelSwitched(Exception):
    """The bot's active model changed while a sync was embedding."""


class _Superseded(Exception):
    """A newer upload replaced the candidate this sync was reading."""


class _Refused(ParseError):
    """A candidate that failed to parse, already recorded on its source."""


# --- An upload's documents --------------------------------------------------------------------
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


# --- Applying documents: plan, embed, write, after-effects --------------------------------------
@dataclass
class _Plan:
    """What a sync changes, decided before any slow work."""

    model: str  # the bot's active embedding model when the sync planned
    existing: dict[str, Document]  # by external id
    wanted: dict[str, tuple[ParsedDocument, str]]  # by external id: (document, checksum)
    changed: set[str]  # new or edited documents
    to_embed: list[str]  # changed, or lacking chunks of `model`
    removed: list[str]
    drafts: dict[str, list[ChunkDraft]]  # the chunks of each document to embed
    texts: list[str]  # every draft's embed_text, in to_embed order

    def kinds_touched(self) -> list[str]:
        return [self.wanted[key][0].kind for key in self.to_embed] + [
            self.existing[key].kind for key in self.removed
        ]


@dataclass
class _Vectors:
    base: np.ndarray  # one row per plan text, from the plan's model
    adapter: str  # the bot's adapter that embedded `adapted`, "" for none
    adapted: np.ndarray | None


def _apply(source: KnowledgeSource, bot: Bot, documents: list[ParsedDocument]) -> None:
    """Plan what changes, embed the new chunks (the slow part, outside any transaction), write
    everything in one transaction, then the after-effects: the intent classifier, the adapter's
    retraining, the notice to the rest of the product."""
    plan = _plan(source, bot.embedding_model_active, documents)
    vectors = _embed(source, bot, plan)
    written = _write(source, bot, plan, vectors)
    _after_write(source, bot, plan, written)


def _plan(source: KnowledgeSource, model: str, documents: list[ParsedDocument]) -> _Plan:
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
    drafts = {key: _drafts(wanted[key][0]) for key in to_embed}
    return _Plan(
        model=model,
        existing=existing,
        wanted=wanted,
        changed=changed,
        to_embed=to_embed,
        removed=[key for key in existing if key not in wanted],
        drafts=drafts,
        texts=[draft.embed_text for key in to_embed for draft in drafts[key]],
    )


def _embed(source: KnowledgeSource, bot: Bot, plan: _Plan) -> _Vectors:
    # progress_done is set by the embedding: from what an interrupted run saved, not from 0.
    source_mark(
        source, progress_total=len(plan.texts), **({} if plan.texts else {"progress_done": 0})
    )
    base = _embed_with_progress(source, plan.model, plan.texts)
    # New chunks join the bot's current adapter space too; a retrain follows if articles changed.
    adapted = _embed_adapter(bot.embedding_adapter, plan.texts)
    adapter = bot.embedding_adapter if adapted is not None else ""
    return _Vectors(base=base, adapter=adapter, adapted=adapted)


def _write(source: KnowledgeSource, bot: Bot, plan: _Plan, vectors: _Vectors) -> int:
    """The plan and its vectors in one transaction; returns how many chunks it wrote."""
    with transaction.atomic():
        # One sync per source at a time; a second one waits here and then finds little to do.
        KnowledgeSource.objects.select_for_update().get(pk=source.pk)
        # A model switch (knowledge/switch.py) may have committed while this sync embedded:
        # chunks of the old model would be invisible, so the sync starts over with the new one.
        # (An adapter swapped meanwhile needs no restart: chunks of an old adapter are scored
        # by the base model alone, and the retrain this sync queues covers them.)
        locked = Bot.objects.select_for_update().get(pk=bot.pk)
        if locked.embedding_model_active != plan.model:
            raise _ModelSwitched
        Document.objects.filter(id__in=[plan.existing[key].id for key in plan.removed]).delete()
        new_chunks: list[Chunk] = []
        for key in plan.to_embed:
            doc, checksum = plan.wanted[key]
            record = _document_save(source, bot, doc, checksum, plan.existing.get(key))
            stale = Chunk.objects.filter(document=record)
            if key not in plan.changed:
                stale = stale.filter(embedding_model=plan.model)  # keep other models' (re-embed)
            stale.delete()
            for draft in plan.drafts[key]:
                row = len(new_chunks)
                new_chunks.append(
                    chunk_new(
                        draft,
                        document_id=record.pk,
                        bot_id=bot.pk,
                        model=plan.model,
                        embedding=vectors.base[row],
                        adapter=vectors.adapter,
                        adapter_embedding=vectors.adapted[row] if vectors.adapter else None,
                    )
                )
        Chunk.objects.bulk_create(new_chunks, batch_size=1000)
        now = timezone.now()
        KnowledgeSource.objects.filter(pk=source.pk).update(
            status=KnowledgeSource.Status.READY,
            error="",
            document_count=Document.objects.filter(source=source).count(),
            chunk_count=Chunk.objects.filter(document__source=source, embedding_model=plan.model)
            .exclude(kind=Chunk.Kind.TITLE)
            .count(),
            last_synced_at=now,
            updated_at=now,
            next_sync_at=(now + source.sync_interval) if source.url else None,
        )
    return len(new_chunks)


def _after_write(source: KnowledgeSource, bot: Bot, plan: _Plan, written: int) -> None:
    # The new version is served: its saved vectors are no longer needed to resume.
    EmbeddingCache.objects.filter(model=plan.model, text_hash__in=_hashes(plan.texts)).delete()
    if written >= ANALYZE_AFTER:
        chunks_analyze()
    kinds = plan.kinds_touched()
    if Document.Kind.INTENT in kinds:
        # The classifier learns from the chunks just written, so it is trained right after.
        intents.intent_model_train(bot=bot, model=plan.model)
    if any(kind != Document.Kind.INTENT for kind in kinds):
        adapter_retrain(bot=bot)  # articles changed: the adapter learns them in the worker
    if kinds:
        # The keyword index follows the chunks just written before anyone is told the knowledge
        # changed (a re-sync never leaves a stale index behind); the worker then measures which
        # ranking suits the new content.
        tuning.profile_refresh(bot=bot, tune=False)
        tuning.profile_tune_later(bot=bot)
        knowledge_changed_notify(bot=bot)
    source.refresh_from_db()


# --- Chunks -----------------------------------------------------------------------------------
def chunk_new(
    part: ChunkDraft | Chunk,
    *,
    document_id: int,
    bot_id: int,
    model: str,
    embedding: np.ndarray,
    adapter: str = "",
    adapter_embedding: np.ndarray | None = None,
) -> Chunk:
    """An unsaved chunk of `part`'s text (a draft from chunking, or a chunk of another model
    being re-embedded, knowledge/switch.py) with its vector from `model`."""
    return Chunk(
        document_id=document_id,
        bot_id=bot_id,
        position=part.position,
        kind=part.kind,
        heading=part.heading[:500],
        text=part.text,
        embed_text=part.embed_text,
        embedding_model=model,
        embedding=embedding,
        adapter=adapter,
        adapter_embedding=adapter_embedding,
    )


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


# --- Embedding --------------------------------------------------------------------------------
def _embed_adapter(adapter: str, texts: list[str]) -> np.ndarray | None:
    if not adapter or not texts:
        return None
    try:
        return embed_all(adapter, texts)
    except EmbeddingError as exc:
        # The adapter is an improvement, never a dependency: chunks without its vector are
        # scored by the base model alone until the next retrain covers them.
        log.warning("adapter %s unavailable during sync: %s", adapter, exc)
        return None


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
    source_mark(source, progress_done=len(texts) - len(missing))
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
            source_mark(source, progress_done=done)
    return np.stack([vectors[h] for h in hashes])


def _hashes(texts: list[str]) -> list[str]:
    return [sha256(text.encode()) for text in texts]
