"""What a bot's knowledge is about, for suggestions and word lists: read once per knowledge
version and kept in this process.

The version is one cheap indexed query per turn: the highest chunk id and the chunk count of
the bot's active model, with the model and adapter names. A sync that adds, changes or removes
a document creates or deletes chunks, so it moves the version; nothing else needs invalidating.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.db import connection

from bots.models import Bot
from knowledge.models import Document

SUGGESTIONS = 4
_cache: dict[int, tuple[tuple, Catalog]] = {}
_lock = threading.Lock()


def knowledge_version(bot: Bot) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(id), count(*) FROM knowledge_chunk"
            " WHERE bot_id = %s AND embedding_model = %s",
            [bot.pk, bot.embedding_model_active],
        )
        top, count = cursor.fetchone()
    return (top or 0, count, bot.embedding_model_active, bot.embedding_adapter)


@dataclass
class Catalog:
    topics: list[str]  # questions and topics the bot can take, most varied first
    vocabulary: frozenset[str]  # words of its titles, categories and products


def catalog(bot: Bot, version: tuple) -> Catalog:
    cached = _cache.get(bot.pk)
    if cached is not None and cached[0] == version:
        return cached[1]
    with _lock:
        built = _build(bot)
        _cache[bot.pk] = (version, built)
    return built


def _build(bot: Bot) -> Catalog:
    from conversations.pipeline.classify import is_greeting

    rows = list(
        Document.objects.filter(bot=bot)
        .order_by("id")
        .values_list("kind", "title", "category", "product")
    )
    vocabulary = frozenset(
        word
        for _kind, *fields in rows
        for value in fields
        for word in re.findall(r"[a-z]{2,}", value.lower())
    )
    return Catalog(topics=_topics(rows, is_greeting), vocabulary=vocabulary)


def _topics(rows, is_greeting) -> list[str]:
    """FAQ questions one category at a time (so four suggestions cover four subjects), then
    intents by name (greetings and thanks are not topics), then article titles."""
    by_category: OrderedDict[str, list[str]] = OrderedDict()
    for kind, title, category, _product in rows:
        if kind == "faq":
            by_category.setdefault(category.lower(), []).append(title)
    faqs = []
    while any(by_category.values()):
        for questions in by_category.values():
            if questions:
                faqs.append(questions.pop(0))
    intents = [t for k, t, *_ in rows if k == "intent" and not is_greeting(t)]
    articles = [t for k, t, *_ in rows if k == "article"]
    # The first four mix the kinds, so even a short list shows what the bot covers.
    topics = faqs[:2] + intents[:1] + articles[:1]
    for title in faqs + intents + articles:
        if title not in topics:
            topics.append(title)
    return topics[:12]


def suggestions(bot: Bot, version: tuple, limit: int = SUGGESTIONS) -> list[str]:
    return catalog(bot, version).topics[:limit]
