"""django-q2 tasks: thin; the logic is in analytics/services.py."""

from __future__ import annotations

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
