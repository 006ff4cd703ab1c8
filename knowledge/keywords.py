"""BM25 over a bot's chunks: the keyword half of retrieval.

Why not PostgreSQL's ts_rank_cd over `search_vector`: ts_rank has no inverse document
frequency, so a word in every chunk of a manual ("device", "press") weighs as much as the
feature name that tells sections apart; measured with `manage.py evaluate` (modes "fts" and
"bm25", README "Knowledge quality"). BM25 here is the Lucene variant, as bm25s computes it
(knowledge/tests/test_keywords.py checks the scores against bm25s itself):

    idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))
    w(t, c) = idf(t) x tf / (tf + k1 x (1 - b + b x len(c) / avglen))

Tokens: lower-cased words of two or more characters (bm25s's pattern), English stopwords
(bm25s's list) dropped, Snowball-stemmed (PyStemmer). The index is a sparse chunk x term matrix
of w(t, c), so a question scores every chunk with one sparse column sum, and a chunk whose text
changes (the self-tuning's held-out checks, knowledge/tuning.py) is rescored with the same idf.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

K1, B = 1.5, 0.75
_WORD = re.compile(r"(?u)\b\w\w+\b")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: C Snowball stemmers

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def tokens(text: str) -> list[str]:
    stop = _stopwords()
    words = [w for w in _WORD.findall(text.lower()) if w not in stop]
    return _stemmer().stemWords(words) if words else []


@dataclass
class KeywordIndex:
    """BM25 weights of a bot's chunks (rows, in `chunk_ids` order) by stemmed term."""

    chunk_ids: np.ndarray
    document_ids: np.ndarray
    vocabulary: dict[str, int]
    idf: np.ndarray
    average_length: float
    weights: object  # scipy.sparse.csr_matrix, chunks x terms
    # Per chunk, its document's category, product and language, for search filters.
    fields: dict[str, np.ndarray] = field(default_factory=dict)
    _row: dict[int, int] | None = None

    @property
    def row(self) -> dict[int, int]:
        if self._row is None:
            self._row = {int(cid): i for i, cid in enumerate(self.chunk_ids)}
        return self._row

    def __getstate__(self):
        return {**self.__dict__, "_row": None}

    def query_terms(self, query: str) -> np.ndarray:
        """Column ids of the question's terms found in the index (repeats kept, as BM25 sums
        each occurrence of a query term)."""
        return np.asarray(
            [self.vocabulary[t] for t in tokens(query) if t in self.vocabulary], dtype=np.int64
        )

    def scores(self, query: str) -> np.ndarray:
        """BM25 of the question against every chunk (0 where no term matches)."""
        terms = self.query_terms(query)
        if not len(terms):
            return np.zeros(len(self.chunk_ids), dtype=np.float32)
        return np.asarray(self.weights[:, terms].sum(axis=1), dtype=np.float32).ravel()

    def mask(self, filters: dict[str, str] | None) -> np.ndarray | None:
        """Chunks that pass the search filters, or None when nothing is filtered."""
        keep = None
        for name in ("category", "product", "language"):
            value = (filters or {}).get(name)
            if value:
                match = self.fields[name] == value
                keep = match if keep is None else keep & match
        return keep

    def row_weights(self, text: str) -> dict[int, float]:
        """The BM25 weights a chunk of this text would have, with this index's idf and
        average length (terms the index has never seen can't match any question's)."""
        counts: dict[int, int] = {}
        words = tokens(text)
        for word in words:
            column = self.vocabulary.get(word)
            if column is not None:
                counts[column] = counts.get(column, 0) + 1
        norm = K1 * (1 - B + B * len(words) / self.average_length)
        return {c: float(self.idf[c] * tf / (tf + norm)) for c, tf in counts.items()}

    def document_frequency(self, term: str) -> int:
        column = self.vocabulary.get(term)
        if column is None:
            return 0
        return int(self.weights[:, column].getnnz())


def index_build(rows: list[tuple[int, int, str, str, str, str]]) -> KeywordIndex:
    """The index of (chunk id, document id, text, category, product, language) rows."""
    from scipy.sparse import csr_matrix  # only a process that builds or reads an index

    vocabulary: dict[str, int] = {}
    data, columns, pointers, lengths = [], [], [0], []
    counted = []
    for _cid, _doc, text, *_fields in rows:
        words = tokens(text)
        lengths.append(len(words))
        counts: dict[int, int] = {}
        for word in words:
            column = vocabulary.setdefault(word, len(vocabulary))
            counts[column] = counts.get(column, 0) + 1
        counted.append(counts)
    n = len(rows)
    frequency = np.zeros(len(vocabulary), dtype=np.float64)
    for counts in counted:
        for column in counts:
            frequency[column] += 1
    idf = np.log(1 + (n - frequency + 0.5) / (frequency + 0.5))
    average = float(np.mean(lengths)) if lengths and np.mean(lengths) > 0 else 1.0
    for counts, length in zip(counted, lengths, strict=True):
        norm = K1 * (1 - B + B * length / average)
        for column, tf in counts.items():
            columns.append(column)
            data.append(idf[column] * tf / (tf + norm))
        pointers.append(len(columns))
    weights = csr_matrix(
        (np.asarray(data, dtype=np.float32), np.asarray(columns, dtype=np.int64), pointers),
        shape=(n, len(vocabulary)),
    )
    return KeywordIndex(
        chunk_ids=np.asarray([r[0] for r in rows], dtype=np.int64),
        document_ids=np.asarray([r[1] for r in rows], dtype=np.int64),
        vocabulary=vocabulary,
        idf=idf.astype(np.float32),
        average_length=average,
        weights=weights.tocsc(),  # column slices: a question reads a few terms' columns
        fields={
            name: np.asarray([r[3 + i] for r in rows], dtype=object)
            for i, name in enumerate(("category", "product", "language"))
        },
    )
