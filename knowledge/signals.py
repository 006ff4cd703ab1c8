"""Signals other apps listen to, so knowledge/ never imports the chat pipeline."""

from django.db import transaction
from django.dispatch import Signal

# A bot's searchable knowledge changed and the change is committed: a sync replaced or removed
# documents, a source was deleted, its adapter was swapped, or its embedding model switched.
# Sent in the process that made the change (the worker, for syncs), with `bot=`.
knowledge_changed = Signal()


def knowledge_changed_notify(*, bot) -> None:
    """Send knowledge_changed once the change is committed (at once outside a transaction)."""
    transaction.on_commit(lambda: knowledge_changed.send(sender=type(bot), bot=bot), robust=True)
