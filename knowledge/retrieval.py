"""Hybrid retrieval: pgvector cosine search plus PostgreSQL full-text search, fused.

Dense similarity carries most of the signal for real customer questions (short, paraphrased);
keyword rank adds exact terms the embedding blurs (product names, error codes). A naive
equal-weight fusion lost to dense alone on our benchmarks (shared/benchmarks/README.md), so the
keyword side is a bounded bonus on top of the dense score rather than an equal vote; the weight
is a constant chosen on the article benchmarks and reported by `manage.py evaluate`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from bots.models import Bot
from knowledge.embeddings import get_embedder

CANDIDATES = 50  # per ranker, before fusion
KEYWORD_WEIGHT = 0.1  # bonus for the best keyword match, relative to cosine similarity
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


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


def _filters_sql(filters: dict[str, str] | None) -> tuple[str, list]:
    sql, params = "", []
    for field in ("category", "product", "language"):
        value = (filters or {}).get(field)
        if value:
            sql += f" AND d.{field} = %s"
            params.append(value)
    return sql, params


def _or_query(query: str) -> str:
    # websearch_to_tsquery ANDs the words; a customer's sentence rarely matches every word,
    # so the words are OR-ed and ts_rank_cd rewards chunks that match more (and closer) of them.
    words = _WORD.findall(query.lower())[:32]
    return " or ".join(words)


def embed_query(bot: Bot, query: str) -> np.ndarray:
    return get_embedder(bot.embedding_model_active).embed([query])[0]


def _vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in vector.tolist()) + "]"


def _dense(cursor, bot: Bot, vector: np.ndarray, filters_sql: str, params: list, limit: int):
    dims = len(vector)
    cast = f"::vector({dims})" if dims == 384 else ""
    # The same cast and predicate as the partial HNSW index (migration 0003), so it is used.
    size = "AND vector_dims(c.embedding) = 384" if dims == 384 else ""
    cursor.execute(
        f"""
        SELECT c.id, 1 - (c.embedding{cast} <=> %s{cast}) AS similarity
        FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id
        WHERE c.bot_id = %s AND c.embedding_model = %s {size} {filters_sql}
        ORDER BY c.embedding{cast} <=> %s{cast}
        LIMIT %s
        """,
        [
            _vector_literal(vector),
            bot.pk,
            bot.embedding_model_active,
            *params,
            _vector_literal(vector),
            limit,
        ],
    )
    return dict(cursor.fetchall())


def _keyword(cursor, bot: Bot, query: str, filters_sql: str, params: list, limit: int):
    terms = _or_query(query)
    if not terms:
        return {}
    cursor.execute(
        f"""
        SELECT c.id, ts_rank_cd(c.search_vector, q, 32) AS rank
        FROM knowledge_chunk c JOIN knowledge_document d ON d.id = c.document_id,
             websearch_to_tsquery('english', %s) q
        WHERE c.bot_id = %s AND c.embedding_model = %s AND c.search_vector @@ q {filters_sql}
        ORDER BY rank DESC
        LIMIT %s
        """,
        [terms, bot.pk, bot.embedding_model_active, *params, limit],
    )
    return dict(cursor.fetchall())


def search(
    *,
    bot: Bot,
    query: str,
    k: int = 5,
    filters: dict[str, str] | None = None,
    vector: np.ndarray | None = None,
    keyword_weight: float = KEYWORD_WEIGHT,
) -> list[Hit]:
    """The k best chunks of the bot's knowledge for `query`, best first."""
    query = query.strip()
    if not query:
        return []
    if vector is None:
        vector = embed_query(bot, query)
    filters_sql, params = _filters_sql(filters)
    with transaction.atomic(), connection.cursor() as cursor:
        # Filtered HNSW scans keep going until enough rows pass the bot filter (pgvector 0.8).
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute("SET LOCAL hnsw.ef_search = 100")
        dense = _dense(cursor, bot, vector, filters_sql, params, max(CANDIDATES, k))
        keyword = (
            _keyword(cursor, bot, query, filters_sql, params, max(CANDIDATES, k))
            if keyword_weight
            else {}
        )
    ranked = fuse(dense, keyword, keyword_weight)[:k]
    return _hits(ranked, dense, keyword)


def fuse(
    dense: dict[int, float], keyword: dict[int, float], weight: float
) -> list[tuple[int, float]]:
    """Dense cosine plus a keyword bonus scaled to the best keyword rank of this query.

    Chunks found only by keywords get the lowest dense score seen as their floor, so a strong
    exact match can surface without outranking clear semantic matches.
    """
    floor = min(dense.values(), default=0.0)
    top = max(keyword.values(), default=0.0) or 1.0
    scores = {cid: sim + weight * keyword.get(cid, 0.0) / top for cid, sim in dense.items()}
    for cid, rank in keyword.items():
        if cid not in scores:
            scores[cid] = floor + weight * rank / top
    return sorted(scores.items(), key=lambda item: item[1], reverse=True)


def _hits(ranked, dense, keyword) -> list[Hit]:
    from knowledge.models import Chunk

    rows = {
        c.id: c
        for c in Chunk.objects.filter(id__in=[cid for cid, _ in ranked]).select_related("document")
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
            score=score,
            dense=dense.get(cid, 0.0),
            keyword=keyword.get(cid, 0.0),
        )
        for cid, score in ranked
        if cid in rows
    ]


def search_documents(*, bot: Bot, query: str, k: int = 5, **kwargs) -> list[Hit]:
    """The best chunk of each of the k best documents (a document scores its best chunk)."""
    best: dict[int, Hit] = {}
    for hit in search(bot=bot, query=query, k=max(k * 8, CANDIDATES), **kwargs):
        if hit.document_id not in best:
            best[hit.document_id] = hit
        if len(best) == k:
            break
    return list(best.values())
