"""django-q2 tasks: thin; the logic is in analytics/services.py."""

from __future__ import annotations

from analytics.digest import digests_send
from analytics.gap_questions import vectors_prepare
from analytics.services import rollups_refresh


def analytics_rollup() -> dict:
    """Every minute (analytics/migrations/0002_rollup_schedule.py): the days touched since the
    last run are recomputed, for every organization but those another run is refreshing (a
    run longer than a minute is not queued behind)."""
    result = rollups_refresh(wait=False)
    return {
        "organizations": result.organizations,
        "days": result.days,
        "seconds": result.seconds,
        "skipped": result.skipped,
    }


def analytics_gaps_digest() -> dict:
    """Every Monday morning (analytics/migrations/0004_gaps_digest_schedule.py): last week's
    knowledge gaps to every owner who wants them."""
    sent = digests_send()
    return {
        "organizations": sent.organizations,
        "emails": sent.emails,
        "empty": sent.empty,
        "failed": sent.failed,
    }


def analytics_gaps_embed() -> dict:
    """Every ten minutes (analytics/migrations/0004_gaps_digest_schedule.py): the new gap
    questions embedded ahead of the analytics page and the digest."""
    return {"embedded": vectors_prepare()}
