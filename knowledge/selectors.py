from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from bots.models import Bot
from config.links import safe_http_url
from knowledge import help_pages
from knowledge.models import Chunk, Document, KnowledgeSource, RetrievalProfile, TeamAnswer


def source_list(*, bot: Bot) -> QuerySet[KnowledgeSource]:
    return bot.knowledge_sources.defer("content", "candidate").order_by("-created_at")


def source_get(*, bot: Bot, source_id: int) -> KnowledgeSource:
    """A source of this bot (the bot was itself fetched through the member's organization)."""
    return get_object_or_404(
        KnowledgeSource.objects.defer("content", "candidate"), bot=bot, pk=source_id
    )


def team_answer_list(*, bot: Bot) -> QuerySet[TeamAnswer]:
    return TeamAnswer.objects.filter(bot=bot).select_related("created_by")


def team_answer_get(*, bot: Bot, answer_id: int) -> TeamAnswer:
    """A team answer of this bot (fetched through the member's organization), else a 404."""
    return get_object_or_404(TeamAnswer.objects.select_related("bot"), bot=bot, pk=answer_id)


def busy(*, bot: Bot, sources: list[KnowledgeSource]) -> bool:
    """Whether the worker still has work for this bot's knowledge: a sync or a model switch."""
    return (
        bot.embedding_model != bot.embedding_model_active
        and not bot.embedding_error
        or any(
            s.status
            in (
                KnowledgeSource.Status.CHECKING,
                KnowledgeSource.Status.PENDING,
                KnowledgeSource.Status.SYNCING,
            )
            for s in sources
        )
    )


def sync_status(*, bot: Bot) -> dict:
    sources = list(source_list(bot=bot))
    return {
        "bot": bot.public_key,
        "embedding_model": bot.embedding_model_active,
        "embedding_model_requested": bot.embedding_model,
        "embedding_adapter": bool(bot.embedding_adapter),
        "embedding_error": bot.embedding_error,
        "syncing": busy(bot=bot, sources=sources),
        "sources": [
            {
                "id": s.pk,
                "name": s.name,
                "kind": s.kind,
                "format": s.format,
                "status": s.status,
                "error": s.error,
                # A new upload being checked; "status" is "checking" meanwhile.
                "checking": s.candidate_filename or None,
                "progress": {"done": s.progress_done, "total": s.progress_total},
                "documents": s.document_count,
                "chunks": s.chunk_count,
                "last_synced_at": s.last_synced_at.isoformat() if s.last_synced_at else None,
                "url": s.url,
                "next_sync_at": s.next_sync_at.isoformat() if s.next_sync_at else None,
            }
            for s in sources
        ],
    }


def chunk_summaries(*, bot: Bot, chunk_ids: list) -> dict[int, dict]:
    """Titles and text of this bot's chunks by id, for a trace a person reads. Ids of chunks
    since deleted (a re-sync) or of another bot are simply missing."""
    ids = [i for i in chunk_ids if isinstance(i, int) and not isinstance(i, bool)]
    if not ids:
        return {}
    chunks = Chunk.objects.filter(bot=bot, pk__in=ids).select_related("document")
    return {
        c.pk: {"title": c.document.title, "url": c.document.url, "text": c.text}
        for c in chunks.only("text", "document__title", "document__url")
    }


# --- Public help pages (knowledge/help_pages.py): no member, every read is scoped by the path
HELP_KINDS = (Document.Kind.ARTICLE, Document.Kind.FAQ)


def help_bot_get(*, organization_slug: str, bot_slug: str) -> Bot:
    """The bot whose help pages these are; a 404 when it keeps them private (Bot.help_pages)."""
    return get_object_or_404(
        Bot.objects.select_related("organization"),
        organization__slug=organization_slug,
        slug=bot_slug,
        help_pages=True,
    )


def help_documents(*, bot: Bot) -> QuerySet[Document]:
    """The bot's articles and FAQs as they serve now: a sync swaps a source's documents in one
    transaction, so a failed or pending new version of a file is never listed."""
    return (
        Document.objects.filter(bot=bot, kind__in=HELP_KINDS)
        .only("id", "title", "kind", "category")
        .order_by("category", "title", "id")
    )


def help_document_get(*, bot: Bot, document_id: int) -> Document:
    """One of the bot's articles or FAQs; another bot's id, or an intent's, is a 404."""
    return get_object_or_404(
        Document.objects.only("id", "title", "kind", "body", "url", "category", "updated_at"),
        bot=bot,
        kind__in=HELP_KINDS,
        pk=document_id,
    )


def citation_target(
    *, bot: Bot, document_id: int, heading: str, text: str, url: str
) -> tuple[str, str]:
    """(link, section heading) for a citation of `text` (the quote, or the chunk) from this
    document: the document's own http(s) page at that heading (a text fragment), else its help
    page at the section's anchor. No link for a document gone since, not shown on help pages
    (an intent), or of a bot whose help pages are off."""
    document = (
        Document.objects.filter(bot=bot, kind__in=HELP_KINDS, pk=document_id)
        .only("id", "title", "body")
        .first()
    )
    own = safe_http_url(url)
    if document is None:
        return own, heading.split(help_pages.PATH_SEPARATOR)[-1]
    section = help_pages.section_of(document.body, document.title, heading, text)
    title = help_pages.section_heading(section)
    if own:
        return help_pages.text_fragment_url(own, title), title
    if not bot.help_pages:
        return "", title  # the bot keeps its help pages private: nothing to open
    link = help_pages.help_page_url(
        organization_slug=bot.organization.slug,
        bot_slug=bot.slug,
        document_id=document.pk,
        title=document.title,
        anchor=section.anchor if section else "",
    )
    return link, title


def retrieval_profile_get(*, bot: Bot) -> RetrievalProfile | None:
    """The ranking the bot chose for its active model (knowledge/tuning.py), without its index."""
    return (
        RetrievalProfile.objects.filter(bot=bot, embedding_model=bot.embedding_model_active)
        .defer("payload")
        .first()
    )
