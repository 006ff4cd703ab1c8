"""Per-bot payloads the worker pickles into the database (intent classifier, keyword index):
unpickled once per process and version, so a turn pays one small query for the version."""

from __future__ import annotations

import pickle


def versioned_payload(cache: dict, model, *, bot, head: dict):
    """The payload of `model`'s row `head` (its id and checksum), from `cache` when this process
    already read that version; older versions of the same bot and model are dropped."""
    key = (bot.pk, bot.embedding_model_active, head["checksum"])
    if key not in cache:
        payload = model.objects.values_list("payload", flat=True).get(pk=head["id"])
        # Our own worker wrote this payload into our own database; it is never user input.
        cache[key] = pickle.loads(bytes(payload))  # noqa: S301
        for stale in [k for k in cache if k[:2] == key[:2] and k != key]:
            del cache[stale]
    return cache[key]
