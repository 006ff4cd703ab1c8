"""Writes for changing a bot's embedding model: re-embed its knowledge in the background, then
switch in one transaction.

Until the switch commits, the bot answers with its old model (`embedding_model_active`); after
it, only with the new one. Chunks record their model and retrieval filters on the active one,
so a question is never scored across two vector spaces. A failure (the new endpoint down, a
bad key) leaves the old model serving and says why on the bot (`embedding_error`).
"""

from __future__ import annotations

import logging
import re

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django_q.tasks import async_task

from bots.models import Bot
from knowledge import intents
from knowledge.adaptation import adapter_discard, adapter_retrain
from knowledge.embeddings import LOCAL_MINILM, EmbeddingError, embed_all
from knowledge.models import Chunk, IntentModel
from knowledge.signals import knowledge_changed_notify
from knowledge.sync import ANALYZE_AFTER, chunk_new, chunks_analyze

log = logging.getLogger(__name__)

_OPENAI_MODEL = re.compile(r"^openai:[\w.:/-]{1,90}$")


def embedding_model_validate(name: str) -> str:
    name = (name or "").strip()
    if name == LOCAL_MINILM or _OPENAI_MODEL.match(name):
        return name
    raise ValidationError(
        f"{name!r} is not an embedding model Handoff can use: write {LOCAL_MINILM} (local, "
        "the default) or openai:<model name> for an OpenAI-compatible endpoint "
        "(EMBEDDING_API_BASE / EMBEDDING_API_KEY), e.g. openai:text-embedding-3-small."
    )


def bot_embedding_model_set(*, bot: Bot, model: str) -> None:
    """Ask for `model`; the worker re-embeds the bot's knowledge and then switches."""
    model = embedding_model_validate(model)
    with transaction.atomic():
        Bot.objects.filter(pk=bot.pk).update(embedding_model=model, embedding_error="")
        bot.embedding_model, bot.embedding_error = model, ""
        if model != bot.embedding_model_active:
            transaction.on_commit(lambda: enqueue_reembed(bot.pk))


def enqueue_reembed(bot_id: int) -> None:
    # By dotted path: knowledge/tasks.py imports this module, never the other way round.
    async_task("knowledge.tasks.bot_reembed", bot_id, task_name=f"knowledge-reembed-{bot_id}")


def bot_reembed(*, bot: Bot) -> bool:
    """Embed every chunk of the bot with its requested model, then make that model active and
    drop the old one's vectors. Returns whether it switched."""
    bot.refresh_from_db()
    target, current = bot.embedding_model, bot.embedding_model_active
    if target == current:
        return False
    snapshot = list(
        Chunk.objects.filter(bot=bot, embedding_model=current)
        .order_by("id")
        .values_list("id", "embed_text")
    )
    try:
        texts = [text for _id, text in snapshot]
        vectors = dict(zip([cid for cid, _ in snapshot], embed_all(target, texts), strict=True))
    except (EmbeddingError, ImproperlyConfigured) as exc:
        log.warning("bot %s: could not switch to %s: %s", bot.pk, target, exc)
        Bot.objects.filter(pk=bot.pk, embedding_model=target).update(
            embedding_error=f"Could not switch to {target}: {exc} Still answering with {current}."
        )
        return False

    with transaction.atomic():
        locked = Bot.objects.select_for_update().get(pk=bot.pk)
        if (locked.embedding_model, locked.embedding_model_active) != (target, current):
            return False  # asked for another model meanwhile: its own task does that switch
        Chunk.objects.filter(bot=bot, embedding_model=target).delete()  # an earlier attempt's
        # The chunks as they are now: syncs that ran during the embedding added some (embedded
        # here, under the lock) and removed others (not copied).
        rows = list(
            Chunk.objects.filter(bot=bot, embedding_model=current).defer(
                "embedding", "adapter_embedding", "search_vector"
            )
        )
        late = [row for row in rows if row.id not in vectors]
        if late:
            vectors.update(
                zip(
                    [r.id for r in late],
                    embed_all(target, [r.embed_text for r in late]),
                    strict=True,
                )
            )
        Chunk.objects.bulk_create(
            [
                chunk_new(
                    row,
                    document_id=row.document_id,
                    bot_id=row.bot_id,
                    model=target,
                    embedding=vectors[row.id],
                )
                for row in rows
            ],
            batch_size=1000,
        )
        # The intent classifier learns from these vectors, so it is retrained for them.
        intents.intent_model_train(bot=locked, model=target)
        previous_adapter = locked.embedding_adapter
        Bot.objects.filter(pk=bot.pk).update(
            embedding_model_active=target, embedding_adapter="", embedding_error=""
        )
        Chunk.objects.filter(bot=bot, embedding_model=current).delete()
        IntentModel.objects.filter(bot=bot, embedding_model=current).delete()
        if previous_adapter:
            transaction.on_commit(lambda: adapter_discard(previous_adapter))
    log.info("bot %s: switched from %s to %s (%d chunks)", bot.pk, current, target, len(rows))
    bot.refresh_from_db()
    if len(rows) >= ANALYZE_AFTER:
        chunks_analyze()
    adapter_retrain(bot=bot)  # the adapter is tied to the local model; retrained if it applies
    knowledge_changed_notify(bot=bot)
    return True
