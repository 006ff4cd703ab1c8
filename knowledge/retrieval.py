"""Hybrid retrieval over a bot's knowledge: pgvector cosine search, article-level scoring, and
BM25 keywords fused by rank, as much as each bot's own content says they earn.

How a chunk is scored (measured with `manage.py evaluate`; README "Knowledge quality"):
- dense: cosine between the question and the chunk (title-prefixed when embedded);
- article context ("title" scoring): 0.7 x that + 0.3 x cosine to the article's own title
  vector, so a passage from an article *about* the question outranks a stray passage elsewhere
  that shares words; "passage" scoring uses the passage's cosine alone;
- domain adapter: where the bot has one, the same score in the adapter's space, weighted 0.75
  against the base model's 0.25;
- keywords: BM25 over the chunks' text (knowledge/keywords.py);
- fusion: weighted reciprocal-rank fusion, share x 1/(60 + keyword rank) + (1 - share) x
  1/(60 + dense rank), at chunk level for `search` and at document level (a document ranks by
  its best chunk on each side) for `search_documents`.

Which of these a bot uses is its RetrievalProfile's choice (knowledge/tuning.py): at sync time
the bot holds out questions generated from its own content and keeps the setting that finds
them best; until it has one, dense alone (the "title" scoring, with its adapter). A question
naming a rare identifier ("E-4012", "order 10023") always lets keywords in at KEYWORD_WEIGHT.

Fusion decides the order only: `Hit.score` is always the "title" scoring with the adapter, so
the relevance gate's bars (conversations/pipeline/gate.py) keep one scale whatever a bot chose.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from bots.models import Bot
from knowledge.embeddings import EmbeddingError, get_embedder, vector_literal
from knowledge.keywords import KeywordIndex, tokens
from knowledge.models import Chunk, KnowledgeSource, RetrievalProfile
from knowledge.stored import versioned_payload

log = logging.getLogger(__name__)

CANDIDATES = 50  # nearest chunks (and best keyword chunks) considered before article scoring
PASSAGE_WEIGHT, TITLE_WEIGHT = 0.7, 0.3
# The bot's domain adapter (knowledge/adaptation.py) next to the base model: on covidfaq
# 0.75 gave hit@1 0.804-0.819 over three training seeds (0.5: 0.79-0.80, adapter alone 0.81-0.82)
# while stackfaq, where the base model is already at 0.957, stays at 0.950-0.955.
ADAPTER_WEIGHT = 0.75
RRF_K = 60  # the usual reciprocal-rank constant (Cormack et al. 2009): ranks, not raw scores
# The keyword share for a question naming a rare identifier, when the bot's own choice is lower.
KEYWORD_WEIGHT = 0.5
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
    score: float  # dense, "title" scoring with the adapter: the gate's scale
    dense: float  # the base model's cosine
    keyword: float  # BM25 (0: no keyword of the question)
    fused: float = 0.0  # what ordered the hits (reciprocal-rank fusion)
    # Who the knowledge comes from, named in citations: only "Answers from the team" (an
    # upload's name is often a private file name, not for customers).
    source: str = ""


@dataclass(frozen=True)
class Setting:
    """How a bot orders its knowledge (see the module docstring)."""

    keyword_share: float = 0.0
    scoring: str = "title"  # or "passage"
    adapter: bool = True

    @property
    def label(self) -> str:
        parts = ["dense" if self.keyword_share == 0 else f"keywords {self.keyword_share:g}"]
        if self.scoring != "title":
            parts.append("passage only")
        if not self.adapter:
            parts.append("no adapter")
        return ", ".join(parts)


DEFAULT = Setting()


def identifiers(query: str) -> list[str]:
    """Things the question names exactly, which embeddings tend to blur."""
    return [match.strip('"') for match in _IDENTIFIER.findall(query)][:8]


def keyword_gate(query: str) -> bool:
    return bool(identifiers(query))


def embed_query(bot: Bot, query: str) -> np.ndarray:
    return get_embedder(bot.embedding_model_active).embed([query])[0]


# --- The bot's profile: its keyword index and its chosen setting --------------------------------
_loaded: dict[tuple[int, str, str], KeywordIndex] = {}


def profile_load(bot: Bot) -> tuple[Setting, KeywordIndex | None]:
    """The bot's chosen setting and keyword index, unpickled once per process and version
    (one small query per search otherwise, as knowledge/intents.py does)."""
    head = (
        RetrievalProfile.objects.filter(bot=bot, embedding_model=bot.embedding_model_active)
        .values("id", "checksum", "choice", "adapter")
        .first()
    )
    if head is None:
        return DEFAULT, None
    loaded = versioned_payload(_loaded, RetrievalProfile, bot=bot, head=head)
    choice = head["choice"] or {}
    setting = Setting(
        keyword_share=float(choice.get("keyword_share", 0.0)),
        scoring=choice.get("scoring", "title"),
        # An adapter chosen against was another adapter than the bot's current one: until
        # the re-tuning that follows an adapter change, the new one is used.
        adapter=bool(choice.get("adapter", True)) or head["adapter"] != bot.embedding_adapter,
    )
    return setting, loaded


def profile_forget() -> None:
    _loaded.clear()


# --- Ranking ----------------------------------------------------------------------------------
def dense_values(sim, sim_adapted, title, title_adapted, *, scoring: str, adapter: bool):
    """Chunk scores from cosines (numpy arrays; NaN where a chunk has no title or adapter
    vector): the article-context mix for "title" scoring, the adapter's share where used."""
    sim = np.asarray(sim, dtype=np.float64)
    value = sim.copy()
    if scoring == "title":
        title = np.asarray(title, dtype=np.float64)
        value = PASSAGE_WEIGHT * sim + TITLE_WEIGHT * np.where(np.isnan(title), sim, title)
    if adapter and sim_adapted is not None:
        sim_adapted = np.asarray(sim_adapted, dtype=np.float64)
        adapted = sim_adapted.copy()
        if scoring == "title":
            title_adapted = np.asarray(title_adapted, dtype=np.float64)
            adapted = PASSAGE_WEIGHT * sim_adapted + TITLE_WEIGHT * np.where(
                np.isnan(title_adapted), sim_adapted, title_adapted
            )
        mixed = (1 - ADAPTER_WEIGHT) * value + ADAPTER_WEIGHT * adapted
        value = np.where(np.isnan(sim_adapted), value, mixed)
    return value


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based rank of each value, highest first (ties in input order)."""
    order = np.argsort(-values, kind="stable")
    result = np.empty(len(values), dtype=np.int64)
    result[order] = np.arange(1, len(values) + 1)
    return result


def fuse(dense: np.ndarray, keyword: np.ndarray, share: float) -> np.ndarray:
    """Weighted reciprocal-rank fusion; only items with a keyword match get a keyword rank.
    Sort by (fused, dense): at share 1 the items no keyword reaches keep their dense order."""
    fused = (1 - share) / (RRF_K + ranks(dense))
    if share > 0:
        matched = keyword > 0
        fused = fused + np.where(
            matched, share / (RRF_K + ranks(np.where(matched, keyword, -1))), 0
        )
    return fused


def order(fused: np.ndarray, dense: np.ndarray) -> np.ndarray:
    return np.lexsort((-dense, -fused))


# --- The database side -------------------------------------------------------------------------
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


def _candidate_chunks(cursor, bot, vector, adapted, document_ids, filters_sql, params):
    """Every chunk of the candidate documents with its exact cosines: (id, document, kind,
    base cosine, adapter cosine or None).

    A handful of documents' chunks: exact scoring here is cheaper than a second index probe,
    and it gives every candidate article its best passage and its title score. The bot and the
    filters are checked again here: documents a keyword index named are only ids.
    """
    if not document_ids:
        return []
    adapter_sql, adapter_params = "NULL", []
    if adapted is not None:
        adapter_sql = "CASE WHEN c.adapter = %s THEN 1 - (c.adapter_embedding <=> %s::vector) END"
        adapter_params = [bot.embedding_adapter, vector_literal(adapted)]
    join = "JOIN knowledge_document d ON d.id = c.document_id" if filters_sql else ""
    cursor.execute(
        f"""
        SELECT c.id, c.document_id, c.kind, 1 - (c.embedding <=> %s::vector), {adapter_sql}
        FROM knowledge_chunk c {join}
        WHERE c.document_id = ANY(%s) AND c.bot_id = %s AND c.embedding_model = %s
          {filters_sql}
        """,
        [
            vector_literal(vector),
            *adapter_params,
            list(document_ids),
            bot.pk,
            bot.embedding_model_active,
            *params,
        ],
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


def _rare_identifier(index: KeywordIndex, query: str) -> bool:
    """Whether the question names an identifier that only a few of the bot's chunks hold."""
    limit = max(3, int(RARE_SHARE * len(index.chunk_ids)))
    for name in identifiers(query):
        terms = tokens(name)
        if terms and all(0 < index.document_frequency(t) <= limit for t in terms):
            return True
    return False


def _keyword_scores(index: KeywordIndex, query: str, filters) -> np.ndarray:
    """BM25 of every indexed chunk, 0 for those the filters leave out."""
    scores = index.scores(query)
    keep = index.mask(filters)
    return scores if keep is None else np.where(keep, scores, 0).astype(np.float32)


def _setting(bot, query, keyword_weight, adapter, scoring) -> tuple[Setting, KeywordIndex | None]:
    chosen, index = profile_load(bot)
    share = chosen.keyword_share if keyword_weight is None else float(keyword_weight)
    if not 0 <= share <= 1:
        raise ValueError(f"keyword_weight must be between 0 and 1, not {share}")
    if keyword_weight is None and share < KEYWORD_WEIGHT and index is not None:
        if _rare_identifier(index, query):
            share = KEYWORD_WEIGHT
    setting = Setting(
        keyword_share=share if index is not None else 0.0,
        scoring=chosen.scoring if scoring is None else scoring,
        adapter=chosen.adapter if adapter is None else adapter,
    )
    return setting, index


def _ranked(bot, query, k, filters, vector, setting: Setting, index, one_per_document):
    """The k best passages as (chunk id, document id, score, dense, keyword, fused)."""
    if vector is None:
        vector = embed_query(bot, query)
    # The adapter's vector is needed for Hit.score even when the setting orders without it.
    adapted = _adapter_vector(bot, query)
    filters_sql, params = _filters_sql(filters)
    keyword: dict[int, float] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        # Filtered HNSW scans keep going until enough rows pass the bot filter (pgvector 0.8).
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute("SET LOCAL hnsw.ef_search = 100")
        limit = max(CANDIDATES, k)
        documents = _nearest(cursor, bot, vector, filters_sql, params, limit)
        if adapted is not None and setting.adapter:
            documents |= _nearest(
                cursor, bot, adapted, filters_sql, params, limit, column="adapter_embedding"
            )
        if setting.keyword_share > 0:
            scores = _keyword_scores(index, query, filters)
            top = [i for i in np.argsort(-scores)[:limit] if scores[i] > 0]
            # Articles found only by their keywords count too.
            documents |= {int(index.document_ids[i]) for i in top}
        chunks = _candidate_chunks(cursor, bot, vector, adapted, documents, filters_sql, params)
    if setting.keyword_share > 0:
        # Chunks written after the index was built have no keyword score until the next one.
        keyword = {c[0]: float(scores[index.row[c[0]]]) for c in chunks if c[0] in index.row}
    return _order(chunks, keyword, setting, k, one_per_document)


def document_max(inverse: np.ndarray, count: int, values: np.ndarray) -> np.ndarray:
    """Each document's best value over its chunks (`inverse`: each chunk's document index)."""
    best = np.full(count, -np.inf)
    np.maximum.at(best, inverse, values)
    return best


def _order(chunks, keyword: dict[int, float], setting: Setting, k: int, one_per_document: bool):
    """Candidate chunks (see _candidate_chunks) scored, fused and cut to the k best."""
    titles = {c[1]: c[3] for c in chunks if c[2] == "title"}
    titles_adapted = {c[1]: c[4] for c in chunks if c[2] == "title" and c[4] is not None}
    rows = [c for c in chunks if c[2] != "title"]  # titles are scoring context, never hits
    if not rows:
        return []
    nan = float("nan")
    sim = np.asarray([c[3] for c in rows], dtype=np.float64)
    sim_adapted = np.asarray([nan if c[4] is None else c[4] for c in rows], dtype=np.float64)
    title = np.asarray([titles.get(c[1], nan) for c in rows], dtype=np.float64)
    title_adapted = np.asarray([titles_adapted.get(c[1], nan) for c in rows], dtype=np.float64)
    canonical = dense_values(sim, sim_adapted, title, title_adapted, scoring="title", adapter=True)
    dense = dense_values(
        sim, sim_adapted, title, title_adapted, scoring=setting.scoring, adapter=setting.adapter
    )
    bm25 = np.asarray([keyword.get(c[0], 0.0) for c in rows], dtype=np.float64)
    fused = fuse(dense, bm25, setting.keyword_share)
    ranked = order(fused, dense)
    if one_per_document:
        # Documents rank by their best chunk on each side; each shows its best fused chunk.
        documents, inverse = np.unique([c[1] for c in rows], return_inverse=True)
        doc_dense = document_max(inverse, len(documents), dense)
        doc_fused = fuse(
            doc_dense, document_max(inverse, len(documents), bm25), setting.keyword_share
        )
        shown: dict[int, int] = {}
        for i in ranked:
            shown.setdefault(int(inverse[i]), int(i))
        return [
            _row(rows, shown[d], canonical, sim, bm25, doc_fused[d])
            for d in order(doc_fused, doc_dense)[:k]
        ]
    return [_row(rows, i, canonical, sim, bm25, fused[i]) for i in ranked[:k]]


def _row(rows, i, canonical, sim, bm25, fused) -> tuple:
    return (
        rows[i][0],
        rows[i][1],
        float(canonical[i]),
        float(sim[i]),
        float(bm25[i]),
        float(fused),
    )


def search(
    *,
    bot: Bot,
    query: str,
    k: int = 5,
    filters: dict[str, str] | None = None,
    vector: np.ndarray | None = None,
    keyword_weight: float | None = None,
    one_per_document: bool = False,
    adapter: bool | None = None,
    scoring: str | None = None,
) -> list[Hit]:
    """The k best passages of the bot's knowledge for `query`, best first; with
    one_per_document, the best passage of each of the k best documents.

    By default the bot's own setting (its RetrievalProfile); keyword_weight (the keyword share
    of the fusion, 0 to 1), adapter and scoring override it, for measuring what each adds
    (keyword_weight=0.0: dense alone, as the relevance gate calibrates)."""
    query = query.strip()
    if not query:
        return []
    setting, index = _setting(bot, query, keyword_weight, adapter, scoring)
    ranked = _ranked(bot, query, k, filters, vector, setting, index, one_per_document)
    return _hits(ranked)


def search_documents(**kwargs) -> list[Hit]:
    """The best passage of each of the k best documents (a document scores its best passage)."""
    return search(one_per_document=True, **kwargs)


def _hits(ranked) -> list[Hit]:
    rows = {
        c.id: c
        for c in Chunk.objects.filter(id__in=[r[0] for r in ranked])
        .select_related("document__source")
        .only(
            "id",
            "document_id",
            "heading",
            "text",
            "kind",
            "document__title",
            "document__url",
            "document__source__name",
            "document__source__kind",
        )
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
            dense=dense,
            keyword=keyword,
            fused=fused,
            source=_source_named(rows[cid].document.source),
        )
        for cid, _doc, value, dense, keyword, fused in ranked
        if cid in rows
    ]


def _source_named(source: KnowledgeSource) -> str:
    return source.name if source.kind == KnowledgeSource.Kind.TEAM else ""
