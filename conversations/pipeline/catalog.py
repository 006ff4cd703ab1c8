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
from knowledge.models import Chunk, Document

SUGGESTIONS = 4
TOPICS = 12  # questions kept per knowledge version; the chips show the first SUGGESTIONS
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
    topics: list[str]  # questions the bot can take, most varied first
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
        .values_list("id", "kind", "title", "category", "product")
    )
    vocabulary = frozenset(
        word
        for _id, _kind, *fields in rows
        for value in fields
        for word in re.findall(r"[a-z]{2,}", value.lower())
    )
    return Catalog(topics=_topics(bot, rows, is_greeting), vocabulary=vocabulary)


def _topics(bot: Bot, rows, is_greeting) -> list[str]:
    """Questions a customer could ask, as chips: FAQ questions one category at a time (so four
    suggestions cover four subjects), then one question per intent (greetings and thanks are
    not topics), then one per article. Never a bare title or an intent's tag."""
    by_category: OrderedDict[str, list[str]] = OrderedDict()
    for _id, kind, title, category, _product in rows:
        if kind == "faq":
            by_category.setdefault(category.lower(), []).append(as_question(title) or title)
    faqs = []
    while any(by_category.values()):
        for questions in by_category.values():
            if questions:
                faqs.append(questions.pop(0))
    # Only as many as the list can show: each needs its patterns or its body read.
    intent_ids = [i for i, k, t, *_ in rows if k == "intent" and not is_greeting(t)][:TOPICS]
    intents = _intent_questions(bot, intent_ids, is_greeting)
    articles = _article_questions([i for i, k, *_ in rows if k == "article"][:TOPICS])
    # The first four mix the kinds, so even a short list shows what the bot covers.
    topics = faqs[:2] + intents[:1] + articles[:1]
    for question in faqs + intents + articles:
        if question not in topics:
            topics.append(question)
    return topics[:TOPICS]


def _intent_questions(bot: Bot, ids: list[int], is_greeting) -> list[str]:
    """One pattern per intent: the first written with a "?", else the first that reads as a
    question (given its "?"). Customers' own words, so the chip is answered as it is asked."""
    patterns: OrderedDict[int, list[str]] = OrderedDict((i, []) for i in ids)
    for document_id, text in (
        Chunk.objects.filter(
            document_id__in=ids, kind=Chunk.Kind.PATTERN, embedding_model=bot.embedding_model_active
        )
        .order_by("document_id", "position")
        .values_list("document_id", "text")
    ):
        if not is_greeting(text):
            patterns[document_id].append(" ".join(text.split()))
    # An intent none of whose patterns is a question ("this is rubbish") is not suggested: a
    # chip is something a customer would ask.
    asked = (
        [q for t in sorted(texts, key=lambda t: not t.endswith("?")) if (q := as_question(t))]
        for texts in patterns.values()
    )
    return [questions[0] for questions in asked if questions]


def _article_questions(ids: list[int]) -> list[str]:
    articles = Document.objects.filter(id__in=ids).order_by("id").values_list("title", "body")
    return [article_question(title, body) for title, body in articles]


# How a question opens: an auxiliary ("can I call you on Sunday"), or a question word and then
# one ("where is my order", "what time does it close"). "What the warranty covers" is a heading,
# not a question.
_AUX = (
    r"(?:is|are|was|were|do|does|did|can|could|will|would|should|shall|may|might|must|have|"
    r"has|had|am)"
)
_QUESTION_OPENING = re.compile(
    rf"^(?:{_AUX}|(?:how|what|when|where|which|who|whom|whose|why)(?:'s|'re|(?:\s+\S+){{0,2}}"
    rf"\s+{_AUX})|how\s+(?:much|many|long|often|far|old|soon))\b",
    re.I,
)
_HOW_TO = re.compile(r"^how to\s+(.+?)[.?!]?$", re.I)
_BODY_QUESTION = re.compile(r"(?:^|(?<=[.!?]\s)|(?<=\n))([A-Z][^.!?\n]{10,120}\?)")


def as_question(text: str) -> str:
    """`text` as a question a customer would type, or "" when it is not one."""
    text = " ".join(text.split()).strip()
    if not text:
        return ""
    if text.endswith("?"):
        return _capitalised(text)
    if how := _HOW_TO.match(text):  # a help heading's "How to reset a password"
        return f"How do I {how.group(1)}?"
    if _QUESTION_OPENING.match(text) and len(text.split()) >= 2:
        return _capitalised(text.rstrip(".!")) + "?"
    return ""


def article_question(title: str, body: str) -> str:
    """A question the article answers: its title or a heading that is one, a question its text
    asks, else a question about its subject."""
    headings = [h.group(2) for h in _HEADING.finditer(body)]
    for text in [title, *headings]:
        if (question := as_question(text)) and len(question.split()) <= 16:
            return question
    for match in _BODY_QUESTION.finditer(body):
        question = match.group(1)
        if _QUESTION_OPENING.match(question) and 4 <= len(question.split()) <= 16:
            return question
    return f"What should I know about {_mid_sentence(title)}?"


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*$", re.M)


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _mid_sentence(title: str) -> str:
    """A title inside a sentence: "Warranty and repairs" → "warranty and repairs", but names
    and acronyms ("Acme Pro setup", "VAT") keep their capitals."""
    words = title.strip().rstrip(".!").split()
    if not words:
        return title
    first, rest = words[0], words[1:]
    if first[1:].islower() and not any(w[:1].isupper() for w in rest):
        words[0] = first.lower()
    return " ".join(words)


def suggestions(bot: Bot, version: tuple, limit: int = SUGGESTIONS) -> list[str]:
    return catalog(bot, version).topics[:limit]
