import pytest

from knowledge import services
from knowledge.retrieval import fuse, search, search_documents
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


def test_fusion_adds_a_bounded_keyword_bonus():
    fused = dict(fuse({1: 0.60, 2: 0.58}, {2: 0.4, 3: 0.2}, weight=0.1))
    assert fused[2] == pytest.approx(0.68) and fused[1] == pytest.approx(0.60)
    assert fused[3] == pytest.approx(0.58 + 0.05), "keyword-only hits start at the dense floor"
