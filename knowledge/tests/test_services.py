"""Sync: idempotent, atomic, and a failure never loses the previous version."""

import pytest

from knowledge import services
from knowledge.embeddings import EmbeddingError, get_embedder
from knowledge.intents import intent_match
from knowledge.models import Chunk, Document, IntentModel, KnowledgeSource
from knowledge.parsers import ParseError
from knowledge.retrieval import embed_query, search_documents
from knowledge.tests.conftest import FAQ_CSV, INTENTS_JSON

pytestmark = pytest.mark.django_db


def _upload(bot, data=FAQ_CSV, filename="faq.csv", source=None):
    return services.source_upload(
        bot=bot, filename=filename, data=data, source=source, sync_now=True
    )


def test_it_ingests_an_faq_and_answers_from_it(acme_bot):
    source = _upload(acme_bot)
    assert source.status == KnowledgeSource.Status.READY
    assert (source.document_count, source.chunk_count) == (4, 4)
    # Embedded: 4 passages and 4 title vectors (titles are scoring context, not counted chunks).
    assert source.progress_done == source.progress_total == 8
    top = search_documents(bot=acme_bot, query="how many days for delivery", k=1)[0]
    assert top.title == "How long does shipping take?"


def test_a_second_identical_sync_changes_nothing(acme_bot):
    source = _upload(acme_bot)
    before = set(Chunk.objects.values_list("id", flat=True))
    _upload(acme_bot, source=source)
    assert set(Chunk.objects.values_list("id", flat=True)) == before


def test_it_replaces_only_what_changed_and_removes_what_went(acme_bot):
    source = _upload(acme_bot)
    keep = Chunk.objects.get(document__title="Can I return an item?", kind="faq").pk
    changed = FAQ_CSV.replace(b"3 to 5 business days", b"2 to 4 business days").replace(
        b"How do I reset my password?,", b"How do I change my e-mail?,"
    )
    _upload(acme_bot, data=changed, source=source)
    shipping = Document.objects.get(title="How long does shipping take?")
    assert shipping.version == 2 and "2 to 4" in shipping.chunks.get(kind="faq").text
    assert Chunk.objects.filter(pk=keep).exists(), "unchanged documents keep their chunks"
    assert not Document.objects.filter(title="How do I reset my password?").exists()
    assert Document.objects.filter(title="How do I change my e-mail?").exists()


def test_a_malformed_upload_leaves_the_previous_version_serving(acme_bot):
    source = _upload(acme_bot)
    with pytest.raises(ParseError):
        _upload(acme_bot, data=b'question,answer\n"unterminated,', source=source)
    source.refresh_from_db()
    assert source.status == KnowledgeSource.Status.READY
    assert source.document_count == 4
    assert search_documents(bot=acme_bot, query="return an item", k=1)[0].title.startswith("Can I")


def test_an_embedding_outage_fails_the_sync_and_keeps_the_old_knowledge(acme_bot, monkeypatch):
    source = _upload(acme_bot)
    embedder = get_embedder(acme_bot.embedding_model_active)

    def down(texts, **kwargs):
        raise EmbeddingError("embedding endpoint unreachable")

    monkeypatch.setattr(embedder, "embed", down)
    with pytest.raises(EmbeddingError):
        _upload(acme_bot, data=FAQ_CSV + b"New question?,New answer.,misc\n", source=source)
    source.refresh_from_db()
    assert source.status == KnowledgeSource.Status.FAILED
    assert "embedding endpoint unreachable" in source.error
    assert Document.objects.filter(source=source).count() == 4
    assert not Document.objects.filter(title="New question?").exists()


def test_search_never_crosses_bots(acme_bot, globex_bot):
    _upload(acme_bot)
    assert search_documents(bot=globex_bot, query="shipping", k=5) == []


def test_intent_files_train_a_calibrated_matcher(acme_bot):
    _upload(acme_bot, data=INTENTS_JSON, filename="intents.json")
    model = IntentModel.objects.get(bot=acme_bot)
    assert 0 < model.threshold < 1
    assert model.metrics["calibrated"] is True

    def match(text):
        return intent_match(bot=acme_bot, text=text, vector=embed_query(acme_bot, text))

    for question, tag in [
        ("when is my new card going to be delivered", "card_arrival"),
        ("I think someone stole my card", "lost_card"),
        ("what's the euro rate", "exchange_rate"),
    ]:
        found = match(question)
        assert (found.tag, found.accepted) == (tag, True), question
    for off_topic in ("what's a good recipe for lasagne", "how do I bake bread"):
        assert not match(off_topic).accepted, off_topic


def test_deleting_a_source_removes_its_knowledge(acme_bot):
    source = _upload(acme_bot, data=INTENTS_JSON, filename="intents.json")
    services.source_delete(source=source)
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert not IntentModel.objects.filter(bot=acme_bot).exists()
