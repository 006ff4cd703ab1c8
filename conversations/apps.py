import logging

from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"

    def ready(self) -> None:
        # Imported here, not at the top: this module loads while the app registry is being
        # populated, before any model (these modules import models) may be imported.
        from knowledge.signals import knowledge_changed

        knowledge_changed.connect(_recalibrate, dispatch_uid="conversations.gate.recalibrate")


def _recalibrate(sender, bot, **kwargs) -> None:
    """The knowledge changed (in this process, committed): the relevance gate's bars are
    computed now, in the worker that synced, rather than on a customer's next turn."""
    # The app registry again: this module must import no model at its top.
    from conversations.pipeline.gate import calibration_store
    from knowledge.embeddings import EmbeddingError

    try:
        calibration_store(bot)
    except EmbeddingError as exc:
        # The next turn calibrates (or says retrieval is unavailable) instead.
        logging.getLogger(__name__).warning("bot %s: gate not calibrated: %s", bot.pk, exc)
