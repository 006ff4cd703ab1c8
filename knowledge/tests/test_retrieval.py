import numpy as np
import pytest

from knowledge import services
from knowledge.retrieval import Setting, _order, fuse, keyword_gate, order, search, search_documents
from knowledge.tests.conftest import FAQ_CSV

pytestmark = pytest.mark.django_db


@pytest.fixture
def faq(acme_bot):
    return services.source_upload(bot=acme_bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)


def test_it_returns_chunks_with_their_sources(acme_bot, faq):
    hits = search(bot=acme_bot, query="I forgot my password", k=2)
    assert hits[0].title == "How do I reset my password?"
    assert hits[0].text.startswith("Q: How do I reset my password?") or "Security" in hits[0].text
    assert hits[0].score >= hits[1].score


def test_an_exact_code_is_found_by_its_keyword(acme_bot, faq):
    hit = search_documents(bot=acme_bot, query="E-4012", k=1)[0]
    assert hit.title == "What does error E-4012 mean?"
    assert hit.keyword > 0


def test_it_filters_by_category(acme_bot, faq):
    hits = search_documents(
        bot=acme_bot, query="how long does it take", k=5, filters={"category": "returns"}
    )
    assert [h.title for h in hits] == ["Can I return an item?"]


def test_an_empty_query_finds_nothing(acme_bot, faq):
    assert search(bot=acme_bot, query="   ", k=5) == []


def test_an_article_about_the_question_outranks_a_stray_passage():
    chunks = [
        (1, 10, "passage", 0.62, None),
        (2, 10, "title", 0.20, None),  # shares words, about something else
        (3, 20, "passage", 0.58, None),
        (4, 20, "title", 0.70, None),  # the article about the question
    ]
    ranked = _order(chunks, {}, Setting(), k=5, one_per_document=False)
    assert [row[0] for row in ranked] == [3, 1], "titles are scoring context, never hits"
    assert ranked[0][2] == pytest.approx(0.7 * 0.58 + 0.3 * 0.70)


def test_passage_scoring_ignores_the_title_but_the_score_keeps_the_gates_scale():
    chunks = [
        (1, 10, "passage", 0.62, None),
        (2, 10, "title", 0.20, None),
        (3, 20, "passage", 0.58, None),
        (4, 20, "title", 0.70, None),
    ]
    ranked = _order(chunks, {}, Setting(scoring="passage"), k=5, one_per_document=False)
    assert [row[0] for row in ranked] == [1, 3]
    assert ranked[0][2] == pytest.approx(0.7 * 0.62 + 0.3 * 0.20)  # Hit.score: "title" scoring


def test_documents_without_a_title_vector_score_by_their_passage():
    ranked = _order([(5, 30, "pattern", 0.8, None)], {}, Setting(), k=5, one_per_document=False)
    assert ranked[0][2] == pytest.approx(0.8)


def test_fusion_lets_a_strong_keyword_match_overtake_a_slightly_closer_passage():
    chunks = [(1, 1, "passage", 0.60, None), (2, 2, "passage", 0.58, None)]
    keyword = {2: 7.5}  # only the second passage names the feature
    dense_only = _order(chunks, keyword, Setting(keyword_share=0.0), k=2, one_per_document=True)
    fused = _order(chunks, keyword, Setting(keyword_share=0.5), k=2, one_per_document=True)
    assert [row[1] for row in dense_only] == [1, 2]
    assert [row[1] for row in fused] == [2, 1]
    assert fused[0][2] == pytest.approx(0.58), "the order changes, never the score"


def test_reciprocal_rank_fusion_weighs_ranks_by_the_keyword_share():
    dense = np.asarray([0.9, 0.8, 0.7])
    keyword = np.asarray([0.0, 1.0, 3.0])
    assert list(order(fuse(dense, keyword, 0.0), dense)) == [0, 1, 2]
    assert list(order(fuse(dense, keyword, 1.0), dense)) == [2, 1, 0]
    middle = fuse(dense, keyword, 0.5)
    assert middle[1] == pytest.approx(0.5 / 62 + 0.5 / 62)
    assert middle[0] == pytest.approx(0.5 / 61)  # no keyword match: no keyword rank


def test_a_keyword_weight_outside_0_to_1_is_refused(acme_bot, faq):
    with pytest.raises(ValueError, match="between 0 and 1"):
        search(bot=acme_bot, query="refund", keyword_weight=2)


@pytest.mark.parametrize(
    "query,gated",
    [
        ("What does error E-4012 mean?", True),
        ("where is order 10023", True),
        ('what is "two-day shipping"', True),
        ("how do I return an item?", False),
        ("is covid-19 airborne", True),
        ("can I get a refund", False),
    ],
)
def test_keywords_join_only_for_questions_with_identifiers(query, gated):
    assert keyword_gate(query) is gated
