"""django-q2 tasks: thin. They re-fetch by id and return quietly if the row is gone.

They are queued by dotted path (services.enqueue_source_sync, adaptation.adapter_retrain,
switch.enqueue_reembed), so no knowledge module imports this one. Two are named by the
schedules that migrations 0005 and 0008 install: renaming them needs a data migration.
"""

from __future__ import annotations

from bots.models import Bot
from knowledge import adaptation, services, switch, tuning
from knowledge.models import KnowledgeSource
from knowledge.parsers import ParseError


def source_sync(source_id: int) -> None:
    source = KnowledgeSource.objects.select_related("bot").filter(pk=source_id).first()
    if source is None:
        return
    try:
        services.source_sync(source=source)
    except ParseError:
        return  # a refused file: the source says why on the knowledge page, nothing to retry


def sources_sync_due() -> None:
    """Every 5 minutes (the schedule is created by knowledge/migrations/0005_web_sources.py)."""
    services.sources_enqueue_due()


def sources_requeue_stalled() -> None:
    """Every minute (the schedule is created by knowledge/migrations/0008_sync_resume.py)."""
    services.sources_requeue_stalled()


def adapter_train(bot_id: int) -> None:
    bot = Bot.objects.filter(pk=bot_id).first()
    if bot is None:
        return
    if adaptation.adapter_train(bot=bot) is not None:
        # A new adapter (or none any more) changes what ranks best: the bot chooses again.
        tuning.profile_refresh(bot=bot)


def retrieval_profile_refresh(bot_id: int) -> None:
    bot = Bot.objects.filter(pk=bot_id).first()
    if bot is None:
        return
    tuning.profile_refresh(bot=bot)


def bot_reembed(bot_id: int) -> None:
    bot = Bot.objects.filter(pk=bot_id).first()
    if bot is None:
        return
    if switch.bot_reembed(bot=bot):
        tuning.profile_refresh(bot=bot)  # a profile belongs to one model's chunks
