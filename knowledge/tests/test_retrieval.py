import pytest

from knowledge import services
from knowledge.retrieval import keyword_gate, score, search, search_documents
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
    ranked = score(chunks, {}, weight=0.1)
    assert [cid for cid, _ in ranked] == [3, 1], "titles are scoring context, never hits"
    assert ranked[0][1] == pytest.approx(0.7 * 0.58 + 0.3 * 0.70)


def test_documents_without_a_title_vector_score_by_their_passage():
    assert score([(5, 30, "pattern", 0.8, None)], {}, weight=0.1) == [(5, pytest.approx(0.8))]


def test_the_keyword_bonus_is_bounded_by_the_best_rank():
    ranked = dict(
        score([(1, 1, "passage", 0.5, None), (2, 2, "passage", 0.5, None)], {2: 0.2}, weight=0.3)
    )
    assert ranked[2] - ranked[1] == pytest.approx(0.3)


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
