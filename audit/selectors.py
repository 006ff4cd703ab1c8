"""Reads of the audit log, scoped to one organization: its owners and admins only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import IntegerField, Value
from django.utils import timezone

from audit import describe
from audit.models import (
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


def audit_page(*, membership: Membership, filters: Filters, page: int | str = 1) -> Page:
    """One page of the organization's events, newest first, each described for people
    (audit.describe.Entry). Only the page's rows are read in full."""
    audit_access(membership=membership)
    models = KINDS[filters.kind][1] if filters.kind in KINDS else MODELS
    parts = []
    for model in models:
        qs = model.objects.filter(
            organization_id=membership.organization_id, pgh_label__in=_labels(model)
        )
        if filters.actor is not None:
            qs = qs.filter(actor_id=filters.actor)
        if filters.since is not None:
            qs = qs.filter(pgh_created_at__gte=_day_start(filters.since))
        if filters.until is not None:
            qs = qs.filter(pgh_created_at__lt=_day_start(filters.until + timedelta(days=1)))
        source = Value(MODELS.index(model), output_field=IntegerField())
        parts.append(qs.annotate(source=source).values("pgh_created_at", "pgh_id", "source"))
    feed = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
    feed = feed.order_by("-pgh_created_at", "-pgh_id")
    result = Paginator(feed, PAGE_SIZE).get_page(page)
    wanted: dict[int, list[int]] = {}
    for row in result.object_list:
        wanted.setdefault(row["source"], []).append(row["pgh_id"])
    events = {
        (source, pk): event
        for source, ids in wanted.items()
        for pk, event in MODELS[source].objects.in_bulk(ids, field_name="pgh_id").items()
    }
    ordered = [events[(row["source"], row["pgh_id"])] for row in result.object_list]
    result.object_list = describe.entries(ordered, organization_id=membership.organization_id)
    return result
