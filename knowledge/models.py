"""A bot's knowledge: sources (an upload or a URL), the documents they hold, and the chunks
that retrieval searches.

Chunks carry their embedding model: a bot's knowledge may briefly exist embedded by two models
while it is re-embedded, and retrieval always filters on the bot's active model, so results
never mix vector spaces.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import VectorField

from bots.models import Bot


class KnowledgeSource(models.Model):
    class Kind(models.TextChoices):
        UPLOAD = "upload", "Uploaded file"
        URL = "url", "Web page"
        SITEMAP = "sitemap", "Sitemap"
        # The bot's "Answers from the team": FAQs agents saved from their replies (TeamAnswer),
        # one source per bot, synced from those rows like any other source.
        TEAM = "team", "Answers from the team"

    class Status(models.TextChoices):
        CHECKING = "checking", "Checking…"
        PENDING = "pending", "Waiting to sync"
        SYNCING = "syncing", "Syncing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="knowledge_sources")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.UPLOAD)
    format = models.CharField(max_length=12, blank=True, help_text="Detected from the file.")
    filename = models.CharField(max_length=255, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    # The last accepted upload: what a re-sync or a re-embed rebuilds from.
    content = models.BinaryField(null=True, blank=True, editable=False)
    content_checksum = models.CharField(max_length=64, blank=True, editable=False)
    # A new upload waiting for the worker to read it: it replaces `content` only once it has
    # parsed within its budget, so a bad or hostile file never stops the previous one serving.
    candidate = models.BinaryField(null=True, blank=True, editable=False)
    candidate_filename = models.CharField(max_length=255, blank=True, editable=False)
    candidate_format = models.CharField(max_length=12, blank=True, editable=False)
    candidate_checksum = models.CharField(max_length=64, blank=True, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    document_count = models.PositiveIntegerField(default=0)
    chunk_count = models.PositiveIntegerField(default=0)
    sync_interval = models.DurationField(
        default=timedelta(days=1), help_text="URL and sitemap sources re-sync this often."
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True)
    # Fetches failed in a row: each one doubles the wait before the next try (knowledge/web.py).
    failure_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot"], condition=models.Q(kind="team"), name="one_team_source_per_bot"
            )
        ]

    def __str__(self) -> str:
        return self.name


class TeamAnswer(models.Model):
    """A question and answer an agent saved from a resolved conversation ("Save as an FAQ").
    The bot's team source (KnowledgeSource.Kind.TEAM) is synced from these rows."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="team_answers")
    question = models.CharField(max_length=300)
    answer = models.TextField()
    # The conversation it came from, by id: knowledge sits below conversations (no foreign key).
    conversation_id = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.question


class Document(models.Model):
    class Kind(models.TextChoices):
        ARTICLE = "article", "Article"
        FAQ = "faq", "FAQ"
        INTENT = "intent", "Intent"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="documents")
    source = models.ForeignKey(KnowledgeSource, on_delete=models.CASCADE, related_name="documents")
    external_id = models.CharField(max_length=500)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ARTICLE)
    title = models.CharField(max_length=500)
    body = models.TextField(blank=True)
    url = models.URLField(max_length=1000, blank=True)
    category = models.CharField(max_length=200, blank=True, db_index=True)
    product = models.CharField(max_length=200, blank=True, db_index=True)
    language = models.CharField(max_length=10, blank=True, db_index=True)
    # Intents: the answers to give when one of its patterns matches.
    responses = models.JSONField(default=list, blank=True)
    checksum = models.CharField(max_length=64)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="unique_document_id")
        ]

    def __str__(self) -> str:
        return self.title


class Chunk(models.Model):
    class Kind(models.TextChoices):
        PASSAGE = "passage", "Passage"
        FAQ = "faq", "Question and answer"
        PATTERN = "pattern", "Intent pattern"
        TITLE = "title", "Title (scoring only)"

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PASSAGE)
    heading = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    embed_text = models.TextField()
    embedding_model = models.CharField(max_length=100)
    # No fixed size: models differ (MiniLM 384, others 768-3072). The HNSW index is an
    # expression index per size (see migration), used when the query casts to that size.
    embedding = VectorField()
    # The same text embedded by the bot's domain adapter, and which adapter that was: retrieval
    # reads it only when it matches the bot's current adapter (knowledge/adaptation.py).
    adapter = models.CharField(max_length=100, blank=True, default="")
    adapter_embedding = VectorField(null=True, blank=True)
    search_vector = models.GeneratedField(
        expression=SearchVector("embed_text", config="english"),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["document_id", "position"]
        indexes = [
            models.Index(fields=["bot", "embedding_model"], name="chunk_bot_model"),
            GinIndex(fields=["search_vector"], name="chunk_search_vector"),
        ]

    def __str__(self) -> str:
        return f"{self.document} #{self.position}"


class IntentModel(models.Model):
    """A bot's intent classifier, trained from its intent patterns at sync time, with the
    acceptance threshold it calibrated on those same patterns."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="intent_models")
    embedding_model = models.CharField(max_length=100)
    checksum = models.CharField(max_length=64, help_text="Of the patterns it was trained on.")
    payload = models.BinaryField(editable=False)
    threshold = models.FloatField()
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bot", "embedding_model"], name="unique_intent_model")
        ]

    def __str__(self) -> str:
        return f"{self.bot} intents ({self.embedding_model})"


class EmbeddingCache(models.Model):
    """Vectors a sync embedded before it committed (knowledge/sync.py), saved batch by batch:
    a sync killed midway resumes from them instead of embedding everything again. Deleted once
    the sync commits; ones a sync left behind go after a day (sources_requeue_stalled)."""

    model = models.CharField(max_length=100)
    # sha256 of the text embedded (a chunk's embed_text).
    text_hash = models.CharField(max_length=64)
    vector = models.BinaryField()  # float32, as the model returned it
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model", "text_hash"], name="unique_cached_vector")
        ]

    def __str__(self) -> str:
        return f"{self.model}: {self.text_hash[:12]}"


class RetrievalProfile(models.Model):
    """How a bot ranks its knowledge, chosen by the bot itself at sync time
    (knowledge/tuning.py): its keyword index (BM25 over its chunks) and the fusion setting
    that won on questions generated from its own content, with each candidate's score."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="retrieval_profiles")
    embedding_model = models.CharField(max_length=100)
    checksum = models.CharField(max_length=64, help_text="Of the chunks it indexed.")
    # The bot's adapter when the choice was made: a later adapter re-tunes.
    adapter = models.CharField(max_length=100, blank=True, default="")
    payload = models.BinaryField(editable=False)  # the pickled keyword index
    choice = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    tuned_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "embedding_model"], name="unique_retrieval_profile"
            )
        ]

    def __str__(self) -> str:
        return f"{self.bot} retrieval ({self.embedding_model})"
