"""django-q2 tasks: thin. They re-fetch by id and return quietly if the row is gone."""

from __future__ import annotations

from django_q.tasks import async_task


def enqueue_source_sync(source_id: int) -> None:
    async_task("knowledge.tasks.source_sync", source_id, task_name=f"knowledge-sync-{source_id}")


def source_sync(source_id: int) -> None:
    from knowledge.models import KnowledgeSource
    from knowledge.parsers import ParseError
    from knowledge.services import source_sync as sync

    source = KnowledgeSource.objects.select_related("bot").filter(pk=source_id).first()
    if source is None:
        return
    try:
        sync(source=source)
    except ParseError:
        return  # a refused file: the source says why on the knowledge page, nothing to retry


def sources_sync_due() -> None:
    """Every 5 minutes (the schedule is created by knowledge/migrations/0005_web_sources.py)."""
    from knowledge.services import sources_enqueue_due

    sources_enqueue_due()


def sources_requeue_stalled() -> None:
    """Every minute (the schedule is created by knowledge/migrations/0008_sync_resume.py)."""
    from knowledge.services import sources_requeue_stalled as requeue

    requeue()


def enqueue_adapter_train(bot_id: int) -> None:
    async_task("knowledge.tasks.adapter_train", bot_id, task_name=f"knowledge-adapter-{bot_id}")


def adapter_train(bot_id: int) -> None:
    from bots.models import Bot
    from knowledge.adaptation import adapter_train as train

    bot = Bot.objects.filter(pk=bot_id).first()
    if bot is None:
        return
    train(bot=bot)


def enqueue_reembed(bot_id: int) -> None:
    async_task("knowledge.tasks.bot_reembed", bot_id, task_name=f"knowledge-reembed-{bot_id}")


def bot_reembed(bot_id: int) -> None:
    from bots.models import Bot
    from knowledge.switch import bot_reembed as reembed

    bot = Bot.objects.filter(pk=bot_id).first()
    if bot is None:
        return
    reembed(bot=bot)
