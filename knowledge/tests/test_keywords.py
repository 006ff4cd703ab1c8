"""BM25 over a bot's chunks (knowledge/keywords.py): pure functions, no database."""

import bm25s
import numpy as np
import pytest
import Stemmer

from knowledge.keywords import index_build, tokens

MANUAL = [
    "The Eco mode lowers power use while the speaker idles.",
    "Press the round button twice to pair the speaker with the speaker next door.",
    "Night light dims the display after sunset.",
    "Pairing mode blinks blue; the speaker pairs in ten seconds.",
]


def build(texts, fields=None):
    fields = fields or [("", "", "")] * len(texts)
    return index_build([(100 + i, 10 + i, text, *fields[i]) for i, text in enumerate(texts)])


@pytest.mark.parametrize("question", ["how do I pair the speaker", "eco power", "display dims"])
def test_its_scores_are_bm25s_lucene_scores(question):
    reference = bm25s.BM25(method="lucene", k1=1.5, b=0.75)
    reference.index(
        bm25s.tokenize(
            MANUAL, stopwords="en", stemmer=Stemmer.Stemmer("english"), show_progress=False
        ),
        show_progress=False,
    )

    ours = build(MANUAL).scores(question)

    assert ours == pytest.approx(reference.get_scores(tokens(question)), rel=1e-5)


def test_words_are_stemmed_and_stopwords_dropped():
    assert tokens("The speakers are Pairing") == ["speaker", "pair"]


def test_a_rewritten_chunk_is_scored_with_the_same_idf():
    index = build(MANUAL)
    terms = index.query_terms("night light")

    weights = index.row_weights(MANUAL[2])

    assert sum(weights[int(t)] for t in terms) == pytest.approx(index.scores("night light")[2])
    assert index.row_weights("nothing of the manual here") == {}


def test_filters_mask_chunks_by_their_documents_fields():
    index = build(
        MANUAL, [("audio", "", ""), ("audio", "", "en"), ("display", "", "en"), ("", "", "")]
    )

    assert list(index.mask({"category": "audio"})) == [True, True, False, False]
    assert list(index.mask({"category": "audio", "language": "en"})) == [False, True, False, False]
    assert index.mask({}) is None


def test_a_question_with_no_known_word_scores_nothing():
    assert not np.any(build(MANUAL).scores("zzz qqq"))
