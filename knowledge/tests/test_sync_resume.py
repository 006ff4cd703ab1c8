"""A sync cut off midway: re-queued once its heartbeat stops, and resumed from what it had
already embedded (knowledge.sync). The real kill of web and worker processes is in
chat/tests/test_recovery_crash.py, beside the kill mid-answer."""

from datetime import timedelta

import pytest
from django.utils import timezone

from knowledge import services, sync
from knowledge.embeddings import get_embedder
from knowledge.models import Chunk, EmbeddingCache, KnowledgeSource
from knowledge.tests.conftest import FAQ_CSV

pytestmark = pytest.mark.django_db


class Killed(Exception):
    """Stands for the worker dying between two batches."""


def test_a_sync_cut_off_midway_resumes_from_what_it_embedded(acme_bot, monkeypatch):
    monkeypatch.setattr(sync, "EMBED_BATCH", 3)
    embedder = get_embedder(acme_bot.embedding_model_active)
    real_embed = embedder.embed
    embedded: list[str] = []
    die_after_first = [True]

    def embed(texts, **kwargs):
        if die_after_first[0] and embedded:
            raise Killed
        embedded.extend(texts)
        return real_embed(texts, **kwargs)

    monkeypatch.setattr(embedder, "embed", embed)
    with pytest.raises(Killed):
        services.source_upload(bot=acme_bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)
    assert embedded and EmbeddingCache.objects.count() == 3
    assert Chunk.objects.count() == 0  # nothing half-applied: the previous (empty) version serves

    die_after_first[0] = False
    before = len(embedded)
    source = KnowledgeSource.objects.get(bot=acme_bot)
    services.source_sync(source=source)
    source.refresh_from_db()
    # 8 texts (4 answers, 4 titles): only the 5 not embedded before the kill are embedded now.
    assert len(embedded) - before == 5
    assert source.status == KnowledgeSource.Status.READY
    assert (source.document_count, source.chunk_count) == (4, 4)
    assert Chunk.objects.count() == 8
    assert EmbeddingCache.objects.count() == 0  # served now: the saved vectors are dropped


def test_it_requeues_a_sync_whose_heartbeat_stopped(
    acme_bot, monkeypatch, django_capture_on_commit_callbacks
):
    queued: list[int] = []
    monkeypatch.setattr(services, "enqueue_source_sync", queued.append)
    stalled = KnowledgeSource.objects.create(
        bot=acme_bot, name="stalled", status=KnowledgeSource.Status.SYNCING
    )
    running = KnowledgeSource.objects.create(
        bot=acme_bot, name="running", status=KnowledgeSource.Status.SYNCING
    )
    long_ago = timezone.now() - services.SYNC_LEASE - timedelta(seconds=1)
    KnowledgeSource.objects.filter(pk=stalled.pk).update(updated_at=long_ago)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.sources_requeue_stalled() == 1
    assert queued == [stalled.pk]
    stalled.refresh_from_db()
    running.refresh_from_db()
    assert stalled.status == KnowledgeSource.Status.PENDING
    assert running.status == KnowledgeSource.Status.SYNCING


def test_stalled_syncs_are_swept_every_minute_in_the_worker():
    from django_q.models import Schedule

    schedule = Schedule.objects.get(func="knowledge.tasks.sources_requeue_stalled")
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 1
