"""A crash mid-sync for real: `manage.py serve` (web and worker) SIGKILLed while a new version of
a source is being embedded, then started again (knowledge.services; `bench_recovery` runs the
same trial N times for `make bench`)."""

from __future__ import annotations

import pytest

from conversations.management.commands import bench_recovery
from knowledge.models import EmbeddingCache

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_sync_killed_midway_is_requeued_within_a_minute_and_completes_once(acme_bot):
    server = bench_recovery.Server()
    server.start()
    try:
        trial = bench_recovery.sync_trial(server, acme_bot, texts=600)
    finally:
        server.stop()
    print(trial)
    assert trial["saved_at_kill"] > 0, trial  # what was embedded before the kill was kept
    assert trial["previous_served"], trial  # the old version served throughout
    assert trial["requeue_s"] is not None and trial["requeue_s"] <= 60, trial
    assert trial["synced"] and not trial["duplicated"], trial
    assert EmbeddingCache.objects.count() == 0  # the new version serves: no vectors left over
