"""The analytics figures, read from the rollups (analytics/models.py), for a member.

Owners and admins see every figure of their organization; agents only their own row of the
agents table; a member of another organization nothing (PermissionDenied). Playground
conversations are in no rollup, so in no figure. The definitions are in the README, section
"Analytics"; the contract with the views is /work/wt/ANALYTICS_CONTRACT.md's API.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, timedelta

from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min, Q
from django.utils import timezone

from analytics import sums
from analytics.definitions import (
    CHANNELS,
    ENDED_STATUSES,
    OUTCOMES,
    PLAYGROUND,
    STALL_STATUSES,
    day_bounds,
    reason_split,
)
from analytics.gaps import report as gap_report
from analytics.models import RefreshState
from bots.models import Availability, Bot, Membership, Organization, User
from conversations.models import ActionCall, Conversation
from conversations.pipeline.catalog import knowledge_version
from escalation.models import EscalationRule, Trigger

RANGES = {"today": 1, "7": 7, "30": 30, "90": 90}
DEFAULT_RANGE = "30"
MAX_DAYS = 366
FIRST_DATE = date(2000, 1, 1)
TO_FIX = 10
CONVERSATION_OUTCOMES = ("bot", "agent", "abandoned", "open", "escalated")


@dataclass(frozen=True)
class Filters:
    organization_id: int
    start: date  # first day, inclusive (settings.TIME_ZONE)
    end: date  # last day, inclusive
    bot_id: int | None = None
    channel: str | None = None  # "widget" | "api" | None (playground never)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The same number of days just before `start`."""
        end = self.start - timedelta(days=1)
        return replace(self, start=end - timedelta(days=self.days - 1), end=end)


def _date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"The {what} date “{value}” is not a date like 2026-01-31.") from None


def filters_from(*, organization: Organization, params) -> Filters:
    """Filters from a query string: "range" (today, 7, 30 or 90 days ending today; 30 by
    default) or "start" and "end" (ISO dates, at most 366 days), "bot" (one of the
    organization's bots) and "channel" (widget or api). ValueError with a sentence otherwise."""

    def text(name: str) -> str:
        return str(params.get(name) or "").strip()

    start_text, end_text = text("start"), text("end")
    today = timezone.localdate()
    if start_text or end_text:
        if not (start_text and end_text):
            raise ValueError("Give both a start and an end date, or pick a range.")
        start, end = _date(start_text, "start"), _date(end_text, "end")
        if start > end:
            raise ValueError("The start date is after the end date.")
        if start < FIRST_DATE or end > today + timedelta(days=MAX_DAYS):
            raise ValueError(f"Pick dates between {FIRST_DATE} and a year from today.")
        if (end - start).days + 1 > MAX_DAYS:
            raise ValueError(f"A period is at most {MAX_DAYS} days.")
    else:
        chosen = text("range") or DEFAULT_RANGE
        if chosen not in RANGES:
            raise ValueError("The range is today, 7, 30 or 90 days.")
        end = today
        start = today - timedelta(days=RANGES[chosen] - 1)

    bot_id = None
    bot_text = text("bot")
    if bot_text:
        # ASCII digits that fit a bigint: anything else is no bot, not a database error.
        well_formed = bot_text.isascii() and bot_text.isdigit() and len(bot_text) <= 18
        if (
            not well_formed
            or not Bot.objects.filter(pk=int(bot_text), organization=organization).exists()
        ):
            raise ValueError("There is no such bot in this organization.")
        bot_id = int(bot_text)

    channel = text("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise ValueError("The channel is widget or api.")
    return Filters(organization.pk, start, end, bot_id, channel)


def _check(membership: Membership | None, filters: Filters) -> None:
    if membership is None or membership.organization_id != filters.organization_id:
        raise PermissionDenied("Not a member of this organization.")


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _totals(counts: dict) -> dict:
    return {
        "conversations": counts["conversations"],
        "bot_resolved": counts["bot_resolved"],
        "agent_resolved": counts["agent_resolved"],
        "abandoned": counts["abandoned"],
        "escalated": counts["escalated"],
        "open": counts["conversations"] - counts["ended"],
        "ai_resolution_rate": _rate(counts["bot_resolved"], counts["ended"]),
        "escalation_rate": _rate(counts["escalated"], counts["conversations"]),
        "abandonment_rate": _rate(counts["abandoned"], counts["ended"]),
    }


def _csat(distribution: list[int]) -> dict:
    n = sum(distribution)
    total = sum(stars * count for stars, count in enumerate(distribution, start=1))
    return {"avg": total / n if n else None, "n": n, "distribution": list(distribution)}


def _reasons(counts: dict[str, int], organization_id: int) -> list[dict]:
    parsed = [(*reason_split(key), n) for key, n in counts.items() if n]
    rule_ids = {rule_id for _, rule_id, _ in parsed if rule_id is not None}
    names = dict(
        EscalationRule.objects.filter(
            pk__in=rule_ids, bot__organization_id=organization_id
        ).values_list("id", "name")
    )
    labels = dict(Trigger.choices)
    reasons = [
        {
            "trigger": trigger,
            "label": labels.get(trigger, trigger),
            "rule_id": rule_id,
            "rule_name": names.get(rule_id),
            "count": n,
        }
        for trigger, rule_id, n in parsed
    ]
    reasons.sort(key=lambda r: (-r["count"], r["trigger"], r["rule_id"] or 0))
    return reasons


def _figures(filters: Filters, *, full: bool) -> dict:
    """Every figure of the period from its rollup rows (summed in SQL: analytics/sums.py);
    `full` adds series, heatmap and to_fix (not shown for the previous period)."""
    days = sums.by_day(filters)
    counts = {name: sum(day[name] for day in days.values()) for name in sums.SUMMED}
    csat = {
        which: [sum(day[f"csat_{which}"][i] for day in days.values()) for i in range(5)]
        for which in ("bot", "agent", "all")
    }
    by_bot: dict[int, int] = defaultdict(int)
    by_channel: dict[str, int] = defaultdict(int)
    for bot_id, channel, n in sums.volumes(filters):
        by_bot[bot_id] += n
        by_channel[channel] += n
    stays = sums.stays(filters)

    bots = Bot.objects.filter(organization_id=filters.organization_id)
    if filters.bot_id is not None:
        bots = bots.filter(pk=filters.bot_id)
    statuses = dict(Conversation.Status.choices)
    channels = dict(Conversation.Channel.choices)
    figures = {
        "period": {"start": filters.start, "end": filters.end, "days": filters.days},
        "totals": _totals(counts),
        "escalation_reasons": _reasons(sums.reasons(filters), filters.organization_id),
        "times": sums.durations(filters),
        "time_in_status": [
            {
                "status": status,
                "label": statuses[status],
                "avg_seconds": round(total / n) if n else None,
                "n": n,
            }
            for status, (total, n) in ((s, stays.get(s, (0, 0))) for s in STALL_STATUSES)
        ],
        "csat": {which: _csat(distribution) for which, distribution in csat.items()},
        "volume_by_bot": sorted(
            (
                {"bot_id": pk, "name": name, "conversations": by_bot.get(pk, 0)}
                for pk, name in bots.values_list("id", "name")
            ),
            key=lambda b: (-b["conversations"], b["name"], b["bot_id"]),
        ),
        "volume_by_channel": [
            {"channel": channel, "label": channels[channel], "conversations": by_channel[channel]}
            for channel in CHANNELS
            if filters.channel in (None, channel)
        ],
        "quality": {
            "turns": sum(counts[name] for name in OUTCOMES),
            "answered": counts["answered"],
            "hedged": counts["low_confidence"],
            "clarifying": counts["clarified"],
            "out_of_scope": counts["deflected"],
            "handoff": counts["handoff_proposed"] + counts["handoff"],
            "thumbs_up": counts["thumbs_up"],
            "thumbs_down": counts["thumbs_down"],
        },
        "demo": counts["demo"] > 0,
    }
    if full:
        empty = {name: 0 for name in sums.COUNTS}
        series = []
        for i in range(filters.days):
            day = filters.start + timedelta(days=i)
            totals = _totals(days.get(day, empty))
            series.append(
                {
                    "day": day,
                    "conversations": totals["conversations"],
                    "ai_resolution_rate": totals["ai_resolution_rate"],
                    "escalation_rate": totals["escalation_rate"],
                    "abandonment_rate": totals["abandonment_rate"],
                }
            )
        figures["series"] = series
        hours = sums.hours(filters)
        figures["heatmap"] = [hours[d * 24 : (d + 1) * 24] for d in range(7)]
        ranked = sorted(
            sums.weak(filters).items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), -kv[1][0], kv[0])
        )
        figures["quality"]["to_fix"] = [
            {
                "source": key.partition(":")[2],
                "kind": key.partition(":")[0],
                "thumbs_down": down,
                "low_confidence": low,
            }
            for key, (down, low) in ranked[:TO_FIX]
        ]
    return figures


def _agents(filters: Filters, *, only: int | None = None) -> list[dict]:
    merged = sums.agents(filters, agent_id=only)
    if only is not None and only not in merged:
        merged[only] = {
            "handled": 0,
            "resolved": 0,
            "csat_sum": 0,
            "csat_n": 0,
            "first_response": None,
            "resolution": None,
        }
    names = {user.pk: user.display_name for user in User.objects.filter(pk__in=list(merged))}
    table = [
        {
            "agent_id": agent_id,
            "name": names.get(agent_id, ""),
            "handled": agent["handled"],
            "resolved": agent["resolved"],
            "first_response_p50": agent["first_response"],
            "resolution_p50": agent["resolution"],
            "csat_avg": agent["csat_sum"] / agent["csat_n"] if agent["csat_n"] else None,
            "csat_n": agent["csat_n"],
        }
        for agent_id, agent in merged.items()
    ]
    table.sort(key=lambda a: (-a["handled"], a["name"].lower(), a["agent_id"]))
    return table


def dashboard(*, membership: Membership, filters: Filters) -> dict:
    """The dashboard's figures for `membership` (see the module docstring for who sees what),
    each also for the previous period of the same length under "previous"."""
    _check(membership, filters)
    period = {"start": filters.start, "end": filters.end, "days": filters.days}
    if not membership.can_manage:
        return {"period": period, "agents": _agents(filters, only=membership.user_id)}
    figures = _figures(filters, full=True)
    figures["agents"] = _agents(filters)
    figures["as_of"] = (
        RefreshState.objects.filter(pk=filters.organization_id)
        .values_list("refreshed_at", flat=True)
        .first()
    )
    figures["previous"] = _figures(filters.previous(), full=False)
    figures["actions"] = action_figures(filters)
    return figures


def action_figures(filters: Filters) -> dict:
    """The bot's action calls that ran (or were refused) in the period, and how many failed at
    the business's endpoint (timeout, error status, a response the template could not use).
    Read from the calls themselves: a handful a day per bot, no rollup needed."""
    start, end = day_bounds(filters.start, filters.end)
    calls = ActionCall.objects.filter(
        conversation__bot__organization_id=filters.organization_id,
        created_at__gte=start,
        created_at__lt=end,
    ).exclude(conversation__channel=PLAYGROUND)
    if filters.bot_id is not None:
        calls = calls.filter(conversation__bot_id=filters.bot_id)
    if filters.channel is not None:
        calls = calls.filter(conversation__channel=filters.channel)
    counts = dict(
        calls.exclude(outcome="").values_list("outcome").annotate(n=Count("id")).order_by()
    )
    return {"calls": sum(counts.values()), "failed": counts.get("failed", 0)}


def now(*, organization: Organization) -> dict:
    """Live, from the conversations themselves (not the rollups): the queue and who serves it."""
    live = Conversation.objects.filter(bot__organization=organization).exclude(channel=PLAYGROUND)
    waiting = live.filter(status=Conversation.Status.WAITING).aggregate(
        n=Count("id"), since=Min("handoff_at")
    )
    longest = (
        max(0, int((timezone.now() - waiting["since"]).total_seconds()))
        if waiting["since"] is not None
        else None
    )
    with_bot = Q(status=Conversation.Status.AI) | Q(
        status=Conversation.Status.AWAITING, assigned_agent__isnull=True
    )
    return {
        "waiting": waiting["n"],
        "longest_wait_seconds": longest,
        "agents_online": organization.memberships.filter(availability=Availability.ONLINE).count(),
        "with_bot": live.filter(with_bot, last_message_at__isnull=False).count(),
    }


def conversations_for(
    *,
    membership: Membership,
    filters: Filters,
    trigger: str | None = None,
    rule_id: int | None = None,
    outcome: str | None = None,
    limit: int = 50,
) -> list[Conversation]:
    """The conversations behind a figure, newest first: those started in the period (and bot,
    channel) that escalated with `trigger` and/or `rule_id`, or ended with `outcome` (bot,
    agent, abandoned; open; escalated). Owners and admins only."""
    _check(membership, filters)
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins see the organization's conversations.")
    if outcome is not None and outcome not in CONVERSATION_OUTCOMES:
        raise ValueError(f"The outcome is one of {', '.join(CONVERSATION_OUTCOMES)}.")
    conversations = conversations_started(filters)
    if trigger is not None or rule_id is not None:
        escalated = Q()
        if trigger is not None:
            escalated &= Q(escalations__trigger=trigger)
        if rule_id is not None:
            escalated &= Q(escalations__rule_id=rule_id)
        conversations = conversations.filter(
            pk__in=Conversation.objects.filter(escalated).values("pk")
        )
    if outcome in ("bot", "agent", "abandoned"):
        conversations = conversations.filter(resolution=outcome)
    elif outcome == "open":
        conversations = conversations.exclude(status__in=ENDED_STATUSES)
    elif outcome == "escalated":
        conversations = conversations.filter(escalations__isnull=False).distinct()
    return list(
        conversations.select_related("bot", "customer", "assigned_agent").order_by(
            "-created_at", "-id"
        )[: max(0, limit)]
    )


def conversations_started(filters: Filters):
    """The conversations a figure counts: started in the period, of the bot and channel asked
    for, never Playground tests. The direct computation (figures.py) starts from the same set."""
    start, end = day_bounds(filters.start, filters.end)
    conversations = Conversation.objects.filter(
        bot__organization_id=filters.organization_id, created_at__gte=start, created_at__lt=end
    ).exclude(channel=PLAYGROUND)
    if filters.bot_id is not None:
        conversations = conversations.filter(bot_id=filters.bot_id)
    if filters.channel is not None:
        conversations = conversations.filter(channel=filters.channel)
    return conversations


GAPS_CACHE_SECONDS = 300


def gaps(*, membership: Membership, filters: Filters):
    """The knowledge gaps of the period (analytics/gaps.py): owners and admins only.

    Kept for five minutes per period and knowledge version of the bots in it (a second or so
    for thousands of questions; bench_gaps): new knowledge shows at once, since the gaps it
    closes are what an owner who just added it looks for; new weak answers within minutes."""
    _check(membership, filters)
    if not membership.can_manage:
        raise PermissionDenied("Only owners and admins see the knowledge gaps.")
    bots = Bot.objects.filter(organization_id=filters.organization_id).order_by("pk")
    if filters.bot_id is not None:
        bots = bots.filter(pk=filters.bot_id)
    versions = [(bot.pk, knowledge_version(bot)) for bot in bots]
    key = "analytics:gaps:" + hashlib.sha256(repr((filters, versions)).encode()).hexdigest()
    report = cache.get(key)
    if report is None:
        report = gap_report(filters=filters)
        cache.set(key, report, GAPS_CACHE_SECONDS)
    return report
