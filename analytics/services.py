"""Keeping the rollups current (the worker, every minute: analytics/tasks.py).

A refresh finds the days whose conversations changed since the organization's watermark, and
recomputes each of those days whole from the source rows (analytics/rollup.py), deleting the
day's rows and inserting the new ones in the same transaction. So:

- incremental: only the days touched are read; a rating given today to a conversation that
  started last month recomputes last month's day;
- idempotent: recomputing a day that did not change writes the same rows;
- safe to run concurrently: the organization's RefreshState row is locked for the whole run,
  so a second refresh waits for the first and then finds little or nothing left to do (the
  worker's schedule does not wait: it skips an organization being refreshed, whose changes
  since that run started are left for the next minute);
- late commits are not missed: changes are looked for from the watermark minus OVERLAP, so a
  transaction that stamped its rows before the last run started but committed after it is seen.

"Changed" is read from the timestamps the services keep: Conversation.updated_at (every save
in conversations/ and escalation/ lists it in update_fields; the two `.update()` calls that do
not, response_due_at and agent_seen_message_id, change no figure) plus csat_at and resolved_at;
Message.updated_at (the answer, its feedback and "Did that answer your question?" are saved
with it); Transition.created_at; EscalationLog's triggered_at, first_response_at and
resolved_at (updated with `.update()`, which touches no updated_at).

A deleted conversation's day is only corrected by a full refresh (`full=True`, as
demo_history does after removing its data).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from analytics.definitions import PLAYGROUND
from analytics.models import AgentDailyRollup, DailyRollup, RefreshState
from analytics.rollup import compute
from bots.models import Organization
from conversations.models import Conversation, Message, Transition
from escalation.models import EscalationLog

log = logging.getLogger(__name__)

# Longer than any transaction that writes conversations is expected to stay open.
OVERLAP = timedelta(minutes=10)
# Days recomputed in one pass: bounds the rows held in memory during a full refresh.
CHUNK_DAYS = 7
BATCH = 1000


@dataclass
class RefreshResult:
    organizations: int = 0
    days: int = 0
    seconds: float = 0.0
    skipped: int = 0  # being refreshed by another run (wait=False)


def rollups_refresh(
    *, organization_id: int | None = None, full: bool = False, wait: bool = True
) -> RefreshResult:
    """Bring the rollups of one organization (or every one) up to date: the days touched since
    the last refresh, or every day with `full`. Each organization in its own transaction.

    An organization another run is refreshing is waited for, or with `wait=False` skipped
    (the schedule: a worker blocked on a lock serves nobody)."""
    began = time.perf_counter()
    organizations = Organization.objects.order_by("id")
    if organization_id is not None:
        organizations = organizations.filter(pk=organization_id)
    result = RefreshResult()
    for pk in organizations.values_list("id", flat=True):
        days = _refresh_organization(pk, full=full, wait=wait)
        if days is None:
            result.skipped += 1
            continue
        result.days += days
        result.organizations += 1
    result.seconds = time.perf_counter() - began
    return result


def _refresh_organization(organization_id: int, *, full: bool, wait: bool) -> int | None:
    began = time.perf_counter()
    RefreshState.objects.bulk_create(
        [RefreshState(organization_id=organization_id)], ignore_conflicts=True
    )
    with transaction.atomic():
        # Held to the commit: a concurrent refresh of this organization waits here, then
        # starts from the watermark this one leaves.
        state = (
            RefreshState.objects.select_for_update(skip_locked=not wait)
            .filter(pk=organization_id)
            .first()
        )
        if state is None:  # another run holds it, and we were told not to wait
            return None
        started = timezone.now()
        if full or state.watermark is None:
            days = _all_days(organization_id)
            DailyRollup.objects.filter(organization_id=organization_id).delete()
            AgentDailyRollup.objects.filter(organization_id=organization_id).delete()
        else:
            days = _touched_days(organization_id, since=state.watermark - OVERLAP)
        for first, last in _runs(days):
            _recompute(organization_id, first, last)
        state.watermark = started
        state.refreshed_at = timezone.now()
        state.days = len(days)
        state.seconds = time.perf_counter() - began
        state.save()
    if days:
        log.info(
            "analytics: organization %s, %d days recomputed in %.2f s",
            organization_id,
            len(days),
            state.seconds,
        )
    return len(days)


def _recompute(organization_id: int, first: date, last: date) -> None:
    daily, agents = compute(organization_id=organization_id, first=first, last=last)
    days = Q(organization_id=organization_id, day__gte=first, day__lte=last)
    DailyRollup.objects.filter(days).delete()
    AgentDailyRollup.objects.filter(days).delete()
    DailyRollup.objects.bulk_create(daily, batch_size=BATCH)
    AgentDailyRollup.objects.bulk_create(agents, batch_size=BATCH)


def _conversations(organization_id: int):
    return Conversation.objects.filter(bot__organization_id=organization_id).exclude(
        channel=PLAYGROUND
    )


def _days_of(conversations) -> list[date]:
    days = (
        conversations.annotate(day=TruncDate("created_at"))  # in settings.TIME_ZONE
        .order_by()
        .values_list("day", flat=True)
        .distinct()
    )
    return sorted(days)


def _all_days(organization_id: int) -> list[date]:
    return _days_of(_conversations(organization_id))


def _touched_days(organization_id: int, *, since) -> list[date]:
    """The start days of the organization's conversations that changed at or after `since`."""
    changed = (
        Q(updated_at__gte=since)
        | Q(csat_at__gte=since)
        | Q(resolved_at__gte=since)
        | Q(pk__in=Message.objects.filter(updated_at__gte=since).values("conversation_id"))
        | Q(pk__in=Transition.objects.filter(created_at__gte=since).values("conversation_id"))
        | Q(
            pk__in=EscalationLog.objects.filter(
                Q(triggered_at__gte=since)
                | Q(first_response_at__gte=since)
                | Q(resolved_at__gte=since)
            ).values("conversation_id")
        )
    )
    return _days_of(_conversations(organization_id).filter(changed))


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Consecutive days grouped into (first, last) runs of at most CHUNK_DAYS."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if (
            runs
            and day - runs[-1][1] == timedelta(days=1)
            and (day - runs[-1][0]).days < (CHUNK_DAYS)
        ):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
