"""The OpenAI-compatible embeddings path, with the real `openai` client against a local server
that speaks the protocol (this machine has no internet, and tests should not need one)."""

import numpy as np
import pytest

from knowledge import services
from knowledge.embeddings import EmbeddingError, _openai
from knowledge.retrieval import search_documents
from knowledge.tests.conftest import DIMS, FAQ_CSV


def test_it_embeds_through_an_openai_compatible_endpoint(endpoint):
    embedder = _openai("test-embedding")
    vectors = embedder.embed(["reset my password", "shipping time"])
    assert embedder.dims == DIMS and vectors.shape == (2, DIMS)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert endpoint.requests[-1]["path"] == "/v1/embeddings"
    assert endpoint.requests[-1]["auth"] == "Bearer sk-test"
    assert endpoint.requests[-1]["model"] == "test-embedding"


def test_an_outage_is_an_embedding_error(endpoint):
    embedder = _openai("test-embedding")
    endpoint.mode = "down"
    with pytest.raises(EmbeddingError, match="openai:test-embedding"):
        embedder.embed(["anything"])


def test_a_change_of_dimensions_is_refused(endpoint):
    embedder = _openai("test-embedding")
    endpoint.mode = "wrong-size"
    with pytest.raises(EmbeddingError, match="returned 9 dimensions; expected 8"):
        embedder.embed(["one", "two"])


@pytest.mark.django_db
def test_a_bot_on_an_openai_model_syncs_and_searches(endpoint, settings, acme):
    from bots.tests.factories import BotFactory

    settings.EMBEDDING_MODEL = "openai:test-embedding"
    bot = BotFactory(organization=acme)
    assert bot.embedding_model_active == "openai:test-embedding"
    source = services.source_upload(bot=bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)
    assert source.status == "ready" and source.chunk_count == 4
    hit = search_documents(bot=bot, query="How do I reset my password?", k=1)[0]
    assert hit.title == "How do I reset my password?"
