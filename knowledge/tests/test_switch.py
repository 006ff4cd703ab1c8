"""Changing a bot's embedding model: re-embedded in the background, switched in one step, the
old model serving until then and after any failure; never two models in one search."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from knowledge import services, switch, sync
from knowledge.embeddings import LOCAL_MINILM
from knowledge.intents import intent_match
from knowledge.models import Chunk, IntentModel
from knowledge.retrieval import embed_query, search_documents
from knowledge.tests.conftest import FAQ_CSV, INTENTS_JSON

pytestmark = pytest.mark.django_db

OPENAI = "openai:test-embedding"


@pytest.fixture
def stocked_bot(acme_bot):
    """Acme's bot on the local model with an FAQ and an intent file."""
    services.source_upload(bot=acme_bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)
    services.source_upload(bot=acme_bot, filename="intents.json", data=INTENTS_JSON, sync_now=True)
    acme_bot.refresh_from_db()
    assert acme_bot.embedding_model_active == LOCAL_MINILM
    return acme_bot


def _request(bot, model, capture):
    with capture(execute=True):
        switch.bot_embedding_model_set(bot=bot, model=model)
    bot.refresh_from_db()


@pytest.mark.parametrize("name", [LOCAL_MINILM, "openai:text-embedding-3-small", "openai:x/y:1"])
def test_known_model_names_are_accepted(name):
    assert switch.embedding_model_validate(f" {name} ") == name


@pytest.mark.parametrize("name", ["", "openai:", "local:other", "text-embedding-3-small", "x y"])
def test_unknown_model_names_are_refused_with_the_choices(name):
    with pytest.raises(ValidationError, match="local:all-MiniLM-L6-v2 .* openai:<model name>"):
        switch.embedding_model_validate(name)


def test_the_worker_re_embeds_then_switches_in_one_step(
    stocked_bot, endpoint, q_sync, django_capture_on_commit_callbacks
):
    before = Chunk.objects.filter(bot=stocked_bot).count()
    _request(stocked_bot, OPENAI, django_capture_on_commit_callbacks)
    assert stocked_bot.embedding_model_active == OPENAI and stocked_bot.embedding_error == ""
    chunks = Chunk.objects.filter(bot=stocked_bot)
    assert chunks.count() == before, "every chunk re-embedded, the old model's removed"
    assert set(chunks.values_list("embedding_model", flat=True)) == {OPENAI}
    assert set(
        IntentModel.objects.filter(bot=stocked_bot).values_list("embedding_model", flat=True)
    ) == {OPENAI}
    hit = search_documents(bot=stocked_bot, query="How do I reset my password?", k=1)[0]
    assert hit.title == "How do I reset my password?"
    text = "where is my parcel"
    match = intent_match(bot=stocked_bot, text=text, vector=embed_query(stocked_bot, text))
    assert match is not None and match.tag


def test_until_the_switch_the_old_model_answers(
    stocked_bot, endpoint, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as queued:
        switch.bot_embedding_model_set(bot=stocked_bot, model=OPENAI)
    assert len(queued) == 1, "the re-embed is queued for the worker"
    stocked_bot.refresh_from_db()
    assert (stocked_bot.embedding_model, stocked_bot.embedding_model_active) == (
        OPENAI,
        LOCAL_MINILM,
    )
    hit = search_documents(bot=stocked_bot, query="How do I reset my password?", k=1)[0]
    assert hit.title == "How do I reset my password?"
    assert endpoint.requests == [], "nothing was embedded by the new model yet"


def test_an_endpoint_outage_keeps_the_old_model_and_says_why(
    stocked_bot, endpoint, q_sync, django_capture_on_commit_callbacks, client, owner
):
    endpoint.mode = "down"
    _request(stocked_bot, OPENAI, django_capture_on_commit_callbacks)
    assert stocked_bot.embedding_model_active == LOCAL_MINILM
    assert "Could not switch to openai:test-embedding" in stocked_bot.embedding_error
    assert "Still answering with local:all-MiniLM-L6-v2" in stocked_bot.embedding_error
    assert set(Chunk.objects.filter(bot=stocked_bot).values_list("embedding_model", flat=True)) == {
        LOCAL_MINILM
    }
    client.force_login(owner)
    page = client.get(reverse("bot_knowledge", args=["acme", stocked_bot.slug]))
    assert "Could not switch to openai:test-embedding" in page.content.decode()
    assert 'hx-trigger="every 2s"' not in page.content.decode(), "nothing left to poll for"


def test_a_sync_that_overlaps_the_switch_starts_over_with_the_new_model(
    stocked_bot, endpoint, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        switch.bot_embedding_model_set(bot=stocked_bot, model=OPENAI)
    real_embed = sync._embed_with_progress
    calls = []

    def embed_then_switch(source, model, texts):
        vectors = real_embed(source, model, texts)
        if not calls:  # the worker's switch commits while this sync is still embedding
            switch.bot_reembed(bot=stocked_bot.__class__.objects.get(pk=stocked_bot.pk))
        calls.append(model)
        return vectors

    monkeypatch.setattr(sync, "_embed_with_progress", embed_then_switch)
    faq = FAQ_CSV + b'"Do you ship abroad?","Yes, to forty countries.",shipping\n'
    source = services.source_upload(bot=stocked_bot, filename="more.csv", data=faq, sync_now=True)
    assert calls == [LOCAL_MINILM, OPENAI]
    assert source.status == "ready"
    assert set(Chunk.objects.filter(bot=stocked_bot).values_list("embedding_model", flat=True)) == {
        OPENAI
    }
    assert Chunk.objects.filter(document__title="Do you ship abroad?").exists()


def test_an_owner_changes_the_model_in_admin(
    stocked_bot, owner, client, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    url = reverse("admin:bots_bot_change", args=[stocked_bot.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        organization=stocked_bot.organization_id,
        allowed_origins="",
        embedding_model="openai:nonsense model",
    )
    page = client.post(url, data)
    assert "is not an embedding model Handoff can use" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        client.post(url, {**data, "embedding_model": OPENAI})
    stocked_bot.refresh_from_db()
    assert (stocked_bot.embedding_model, stocked_bot.embedding_model_active) == (
        OPENAI,
        LOCAL_MINILM,
    )
    assert len(queued) == 1


def test_the_status_api_reports_the_switch(stocked_bot, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        switch.bot_embedding_model_set(bot=stocked_bot, model=OPENAI)
    status = client.get(
        "/api/v1/kb/sync_status", HTTP_AUTHORIZATION=f"Bearer {stocked_bot.secret_key}"
    ).json()
    assert status["embedding_model"] == LOCAL_MINILM
    assert status["embedding_model_requested"] == OPENAI
    assert status["syncing"] is True


def test_the_knowledge_page_shows_the_switch_and_polls_until_done(
    stocked_bot, client, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        switch.bot_embedding_model_set(bot=stocked_bot, model=OPENAI)
    client.force_login(owner)
    page = client.get(reverse("bot_knowledge", args=["acme", stocked_bot.slug])).content.decode()
    assert "Switching to openai:test-embedding" in page
    assert "answers use local:all-MiniLM-L6-v2 until it is done" in page
    assert 'hx-trigger="every 2s"' in page
