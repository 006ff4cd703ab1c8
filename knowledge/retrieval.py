"""Hybrid retrieval over a bot's knowledge: pgvector cosine search, article-level scoring, and
PostgreSQL full-text search where it earns its place.

How a chunk is scored (measured with `manage.py evaluate`; README "Knowledge quality"):
- dense: cosine between the question and the chunk (title-prefixed when embedded);
- article context: 0.7 x that + 0.3 x cosine to the article's own title vector, so a passage
  from an article *about* the question outranks a stray passage elsewhere that shares words;
- domain adapter: where the bot has one, the same score in the adapter's space, weighted 0.75
  against the base model's 0.25;
- keywords: a bounded bonus from ts_rank over websearch_to_tsquery, only for identifiers in
  the question (a code, a number, a quoted phrase: "E-4012", "order 10023") that are rare in
  this bot's knowledge. On plain questions every keyword weighting we measured lost to dense
  alone (shared/benchmarks), and so did common identifiers ("covid-19" in a COVID FAQ), so
  there the keyword side is gated off rather than allowed to add noise.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from bots.models import Bot
from knowledge.embeddings import EmbeddingError, get_embedder, vector_literal
from knowledge.models import Chunk

log = logging.getLogger(__name__)

CANDIDATES = 50  # nearest chunks considered before article scoring
PASSAGE_WEIGHT, TITLE_WEIGHT = 0.7, 0.3
# The bot's domain adapter (knowledge/adaptation.py) next to the base model: on covidfaq
# 0.75 gave hit@1 0.804-0.819 over three training seeds (0.5: 0.79-0.80, adapter alone 0.81-0.82)
# while stackfaq, where the base model is already at 0.957, stays at 0.950-0.955.
ADAPTER_WEIGHT = 0.75
KEYWORD_WEIGHT = 0.1  # bonus for the best keyword match, when the gate opens
RARE_SHARE = 0.05  # an identifier found in more than this share of chunks tells nothing apart
# A token with a digit (error codes, order numbers, model names) or a quoted phrase.
_IDENTIFIER = re.compile(r"(?<![\w-])(?=[\w-]*\d)[\w-]{3,}|\"[^\"]{2,}\"")


@dataclass
class Hit:
    chunk_id: int
    document_id: int
    title: str
    url: str
    heading: str
    text: str
    kind: str
    score: float
    dense: float
    keyword: float


def identifiers(query: str) -> list[str]:
    """Things the question names exactly, which embeddings tend to blur."""
    return [match.strip('"') for match in _IDENTIFIER.findall(query)][:8]


def keyword_gate(query: str) -> bool:
    return bool(identifiers(query))


def embed_query(bot: Bot, query: str) -> np.ndarray:
    return get_embedder(bot.embedding_model_active).embed([query])[0]


def _filters_sql(filters: dict[str, str] | None) -> tuple[str, list]:
    sql, params = "", []
    for field in ("category", "product", "language"):
        value = (filters or {}).get(field)
        if value:
            sql += f" AND d.{field} = %s"
            params.append(value)
    return sql, params


def _nearest(cursor, bot, vector, filters_sql, params, limit, *, column="embedding") -> set[int]:
    """Documents of the `limit` nearest chunks (approximate, through the HNSW index), in the
    active model's space or, with column="adapter_embedding", in the bot's adapter's."""
    dims = len(vector)
    cast = f"::vector({dims})" if dims == 384 else ""
    # The same cast and predicate as the partial HNSW indexes (migrations 0003, 0006).
    size = f"AND vector_dims(c.{column}) = 384" if dims == 384 else ""
    space = "c.embedding_model = %s" if column == "embedding" else "c.adapter = %s"
    name = bot.embedding_model_active if column == "embedding" else bot.embedding_adapter
    join = "JOIN knowledge_document d ON d.id = c.document_id" if filters_sql else ""
    cursor.execute(
        f"""
        SELECT c.document_id
        FROM knowledge_chunk c {join}
        WHERE c.bot_id = %s AND {space} {size} {filters_sql}
        ORDER BY c.{column}{cast} <=> %s{cast}
        LIMIT %s
        """,
        [bot.pk, name, *params, vector_literal(vector), limit],
    )
    return {row[0] for row in cursor.fetchall()}


def _candidate_chunks(cursor, bot, vector, adapted, document_ids) -> list[tuple]:
    """Every chunk of the candidate documents with its exact cosines: (id, document, kind,
    base cosine, adapter cosine or None).

    A handful of documents' chunks: exact scoring here is cheaper than a second index probe,
    and it gives every candidate article its best passage and its title score.
    """
    if not document_ids:
        return []
    adapter_sql, adapter_params = "NULL", []
    if adapted is not None:
        adapter_sql = "CASE WHEN c.adapter = %s THEN 1 - (c.adapter_embedding <=> %s::vector) END"
        adapter_params = [bot.embedding_adapter, vector_literal(adapted)]
    cursor.execute(
        f"""
        SELECT c.id, c.document_id, c.kind, 1 - (c.embedding <=> %s::vector), {adapter_sql}
        FROM knowledge_chunk c
        WHERE c.document_id = ANY(%s) AND c.embedding_model = %s
        """,
        [vector_literal(vector), *adapter_params, list(document_ids), bot.embedding_model_active],
    )
    return cursor.fetchall()


def _adapter_vector(bot: Bot, query: str) -> np.ndarray | None:
    """The question in the bot's adapter space, or None: no adapter, or it can't be loaded
    (just replaced by the worker), in which case the base model answers alone."""
    if not bot.embedding_adapter:
        return None
    try:
        return get_embedder(bot.embedding_adapter).embed([query])[0]
    except EmbeddingError as exc:
        log.warning("bot %s: adapter unavailable, base model only: %s", bot.pk, exc)
        return None


def _keyword(cursor, bot, query, filters_sql, params, limit) -> tuple[dict[int, float], set[int]]:
    """Chunks containing the question's rare identifiers, with their ts_rank, and the
    documents they belong to."""
    names = identifiers(query)
    if not names:
        return {}, set()
    cursor.execute(
        "SELECT coalesce(sum(chunk_count), 0) FROM knowledge_knowledgesource WHERE bot_id = %s",
        [bot.pk],
    )
    limit_rare = max(3, int(RARE_SHARE * cursor.fetchone()[0]))
    rare = []
    for name in names:
        # Counting stops one past the limit: a common identifier costs no more than a rare one.
        cursor.execute(
            """
            SELECT count(*) FROM (
                SELECT 1 FROM knowledge_chunk
                WHERE bot_id = %s AND embedding_model = %s AND kind <> 'title'
                  AND search_vector @@ websearch_to_tsquery('english', %s)
                LIMIT %s
            ) AS found
            """,
            [bot.pk, bot.embedding_model_active, f'"{name}"', limit_rare + 1],
        )
        if 0 < cursor.fetchone()[0] <= limit_rare:
            rare.append(f'"{name}"')
    if not rare:
        return {}, set()
    join = "JOIN knowledge_document d ON d.id = c.document_id" if filters_sql else ""
    cursor.execute(
        f"""
        SELECT c.id, c.document_id, ts_rank(c.search_vector, q) AS rank
        FROM knowledge_chunk c {join}, websearch_to_tsquery('english', %s) q
        WHERE c.bot_id = %s AND c.embedding_model = %s AND c.kind <> 'title'
          AND c.search_vector @@ q {filters_sql}
        ORDER BY rank DESC
        LIMIT %s
        """,
        [" or ".join(rare), bot.pk, bot.embedding_model_active, *params, limit],
    )
    rows = cursor.fetchall()
    return {cid: rank for cid, _doc, rank in rows}, {doc for _cid, doc, _rank in rows}


def _ranked(
    bot: Bot, query: str, k: int, filters, vector, keyword_weight, adapter: bool
) -> tuple[list[tuple[int, int, float]], dict[int, float], dict[int, float]]:
    """Every candidate passage as (chunk id, document id, score), best first, plus the dense
    and keyword scores by chunk id. Nothing is loaded beyond ids and numbers."""
    if vector is None:
        vector = embed_query(bot, query)
    adapted = _adapter_vector(bot, query) if adapter else None
    filters_sql, params = _filters_sql(filters)
    with transaction.atomic(), connection.cursor() as cursor:
        # Filtered HNSW scans keep going until enough rows pass the bot filter (pgvector 0.8).
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute("SET LOCAL hnsw.ef_search = 100")
        documents = _nearest(cursor, bot, vector, filters_sql, params, max(CANDIDATES, k))
        if adapted is not None:
            documents |= _nearest(
                cursor,
                bot,
                adapted,
                filters_sql,
                params,
                max(CANDIDATES, k),
                column="adapter_embedding",
            )
        keyword, keyword_documents = (
            _keyword(cursor, bot, query, filters_sql, params, CANDIDATES)
            if keyword_weight > 0
            else ({}, set())
        )
        documents |= keyword_documents  # articles found only by their keywords count too
        chunks = _candidate_chunks(cursor, bot, vector, adapted, documents)
    document_of = {c[0]: c[1] for c in chunks}
    ranked = [
        (cid, document_of[cid], value) for cid, value in score(chunks, keyword, keyword_weight)
    ]
    return ranked, {c[0]: c[3] for c in chunks}, keyword


def search(
    *,
    bot: Bot,
    query: str,
    k: int = 5,
    filters: dict[str, str] | None = None,
    vector: np.ndarray | None = None,
    keyword_weight: float = KEYWORD_WEIGHT,
    one_per_document: bool = False,
    adapter: bool = True,
) -> list[Hit]:
    """The k best passages of the bot's knowledge for `query`, best first; with
    one_per_document, the best passage of each of the k best documents. keyword_weight=0 and
    adapter=False switch those parts off, for measuring what each adds."""
    query = query.strip()
    if not query:
        return []
    ranked, dense, keyword = _ranked(bot, query, k, filters, vector, keyword_weight, adapter)
    if one_per_document:
        best: dict[int, tuple[int, int, float]] = {}
        for item in ranked:
            best.setdefault(item[1], item)  # the first seen is the document's best
        ranked = list(best.values())  # insertion order: still best first
    return _hits(ranked[:k], dense, keyword)


def search_documents(**kwargs) -> list[Hit]:
    """The best passage of each of the k best documents (a document scores its best passage)."""
    return search(one_per_document=True, **kwargs)


def score(chunks, keyword: dict[int, float], weight: float) -> list[tuple[int, float]]:
    """Passage scores, in each space: 0.7 x passage cosine + 0.3 x its article's title cosine
    (the passage's own cosine where the document has no title vector, as intent patterns).
    With an adapter, its score weighs 0.75 and the base model's 0.25. Plus the keyword bonus scaled
    to this query's best keyword rank."""
    titles = {c[1]: c[3] for c in chunks if c[2] == "title"}
    titles_adapted = {c[1]: c[4] for c in chunks if c[2] == "title" and c[4] is not None}
    top = max(keyword.values(), default=0.0) or 1.0
    scored = []
    for cid, doc, kind, sim, sim_adapted in chunks:
        if kind == "title":
            continue
        value = PASSAGE_WEIGHT * sim + TITLE_WEIGHT * titles.get(doc, sim)
        if sim_adapted is not None:
            adapted = PASSAGE_WEIGHT * sim_adapted + TITLE_WEIGHT * titles_adapted.get(
                doc, sim_adapted
            )
            value = (1 - ADAPTER_WEIGHT) * value + ADAPTER_WEIGHT * adapted
        value += weight * keyword.get(cid, 0.0) / top
        scored.append((cid, value))
    return sorted(scored, key=lambda item: item[1], reverse=True)


def _hits(ranked, dense, keyword) -> list[Hit]:
    rows = {
        c.id: c
        for c in Chunk.objects.filter(id__in=[cid for cid, _doc, _value in ranked])
        .select_related("document")
        .only("id", "document_id", "heading", "text", "kind", "document__title", "document__url")
    }
    return [
        Hit(
            chunk_id=cid,
            document_id=rows[cid].document_id,
            title=rows[cid].document.title,
            url=rows[cid].document.url,
            heading=rows[cid].heading,
            text=rows[cid].text,
            kind=rows[cid].kind,
            score=value,
            dense=dense.get(cid, 0.0),
            keyword=keyword.get(cid, 0.0),
        )
        for cid, _doc, value in ranked
        if cid in rows
    ]
