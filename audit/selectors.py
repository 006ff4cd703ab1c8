"""Reads of the audit log, scoped to one organization: its owners and admins only."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import islice

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.utils import timezone

from audit import describe
from audit.models import (
    ActionEvent,
    BotEvent,
    BotKeyEvent,
    BusinessHoursEvent,
    ConsoleEvent,
    EscalationRuleEvent,
    HolidayEvent,
    InvitationEvent,
    KnowledgeSourceEvent,
    MembershipEvent,
    OrganizationEvent,
)
from bots.models import Membership

PAGE_SIZE = 50

# The filter's kinds, in the order the page lists them: each reads some event tables.
KINDS = {
    "bot": ("Bot settings", [BotEvent]),
    "keys": ("Keys", [BotKeyEvent]),
    "rules": ("Escalation rules", [EscalationRuleEvent]),
    "hours": ("Business hours and holidays", [BusinessHoursEvent, HolidayEvent]),
    "knowledge": ("Knowledge sources", [KnowledgeSourceEvent]),
    "actions": ("Actions", [ActionEvent]),
    "members": ("Members and invitations", [MembershipEvent, InvitationEvent]),
    "organization": ("Organization and chat webhook", [OrganizationEvent]),
    "console": ("Console actions", [ConsoleEvent]),
}
MODELS = [model for _label, models in KINDS.values() for model in models]


def _labels(model) -> list[str]:
    # Only what the trackers record: the baseline rows (audit migration 0002) are not events.
    return [tracker.label for tracker in model.pgh_trackers]


@dataclass(frozen=True)
class Filters:
    actor: int | None = None
    kind: str = ""
    since: date | None = None
    until: date | None = None


def audit_access(*, membership: Membership) -> None:
    """Owners and admins read the audit log; agents do not (403). Another organization's
    members never get this far: their membership lookup is a 404."""
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins read the audit log.")


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass
class AuditPage:
    """A page of the log. Pages are keyset pages: `older` is the cursor of the next one (None
    on the last), so page 200 costs what page 1 does and rows written meanwhile never shift
    what "Older" shows."""

    object_list: list
    older: str | None
    first: bool


def _cursor(value: str | None) -> tuple[datetime, int, int] | None:
    """The `before` of a page's URL: "<time>_<table>_<id>" of the last row of the page before;
    anything else is the first page."""
    try:
        at, source, pk = (value or "").rsplit("_", 2)
        at, source, pk = datetime.fromisoformat(at), int(source), int(pk)
    except ValueError:
        return None
    if at.tzinfo is None or not 0 <= source < len(MODELS):
        return None
    return at, source, pk


def _older_than(qs, source: int, cursor: tuple[datetime, int, int]):
    """Rows after the cursor in the log's order: newest first, then by table, then by id."""
    at, cursor_source, pk = cursor
    if source < cursor_source:
        return qs.filter(pgh_created_at__lte=at)
    if source > cursor_source:
        return qs.filter(pgh_created_at__lt=at)
    return qs.filter(Q(pgh_created_at__lt=at) | Q(pgh_created_at=at, pgh_id__lt=pk))


def audit_page(*, membership: Membership, filters: Filters, before: str | None = None) -> AuditPage:
    """One page of the organization's events, newest first, each described for people
    (audit.describe.Entry).

    Each event table is read in the log's order from its (organization, time, id) index, at
    most a page and one row from each, and the rows merged here: the same few milliseconds
    whether the organization has a hundred events or millions (a UNION ALL sorted by
    PostgreSQL read them all). No count: one row past the page says whether there is more."""
    audit_access(membership=membership)
    cursor = _cursor(before)
    models = KINDS[filters.kind][1] if filters.kind in KINDS else MODELS
    streams = []
    for model in models:
        source = MODELS.index(model)
        qs = model.objects.filter(
            organization_id=membership.organization_id, pgh_label__in=_labels(model)
        )
        if filters.actor is not None:
            qs = qs.filter(actor_id=filters.actor)
        if filters.since is not None:
            qs = qs.filter(pgh_created_at__gte=_day_start(filters.since))
        if filters.until is not None:
            qs = qs.filter(pgh_created_at__lt=_day_start(filters.until + timedelta(days=1)))
        if cursor is not None:
            qs = _older_than(qs, source, cursor)
        rows = qs.order_by("-pgh_created_at", "-pgh_id")[: PAGE_SIZE + 1]
        streams.append(
            [(at, source, pk) for at, pk in rows.values_list("pgh_created_at", "pgh_id")]
        )
    merged = list(islice(heapq.merge(*streams, reverse=True), PAGE_SIZE + 1))
    page, more = merged[:PAGE_SIZE], len(merged) > PAGE_SIZE
    wanted: dict[int, list[int]] = {}
    for _at, source, pk in page:
        wanted.setdefault(source, []).append(pk)
    events = {
        (source, pk): event
        for source, ids in wanted.items()
        for pk, event in MODELS[source].objects.in_bulk(ids, field_name="pgh_id").items()
    }
    ordered = [events[(source, pk)] for _at, source, pk in page]
    at, source, pk = page[-1] if page else (None, None, None)
    return AuditPage(
        object_list=describe.entries(ordered, organization_id=membership.organization_id),
        older=f"{at.isoformat()}_{source}_{pk}" if more else None,
        first=cursor is None,
    )
