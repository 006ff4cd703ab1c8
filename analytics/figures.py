"""The dashboard's figures computed directly from the source rows, conversation by conversation,
without the rollups. Slow (it reads every message of the period) and kept for one purpose: the
tests check that the rollups, merged for any period, give exactly these figures.

It returns what `selectors.dashboard` returns to an owner, without "previous" and "as_of".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

from django.db.models import Prefetch

from analytics.definitions import (
    CHANNELS,
    ENDED_STATUSES,
    STALL_STATUSES,
    day_start,
    local_day,
    percentile,
    seconds,
    weak_sources,
)
from analytics.selectors import TO_FIX, Filters, conversations_started
from bots.models import Bot, User
from conversations.models import Conversation, Message
from escalation.models import EscalationRule, Trigger


def _p(values: list[int]) -> dict:
    values = sorted(values)
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "n": len(values)}


def _rates(conversations: list[Conversation]) -> dict:
    ended = [c for c in conversations if c.status in ENDED_STATUSES]
    escalated = [c for c in conversations if c.logs]
    by = Counter(c.resolution for c in conversations)
    return {
        "conversations": len(conversations),
        "bot_resolved": by["bot"],
        "agent_resolved": by["agent"],
        "abandoned": by["abandoned"],
        "escalated": len(escalated),
        "open": len(conversations) - len(ended),
        "ai_resolution_rate": by["bot"] / len(ended) if ended else None,
        "escalation_rate": len(escalated) / len(conversations) if conversations else None,
        "abandonment_rate": by["abandoned"] / len(ended) if ended else None,
    }


def _csat(scores: list[int]) -> dict:
    return {
        "avg": sum(scores) / len(scores) if scores else None,
        "n": len(scores),
        "distribution": [scores.count(stars) for stars in range(1, 6)],
    }


def figures(filters: Filters) -> dict:
    conversations = conversations_started(filters)
    conversations = list(
        conversations.select_related("customer").prefetch_related(
            Prefetch("messages", queryset=Message.objects.order_by("created_at", "id")),
            "transitions",
            "escalations",
        )
    )
    for c in conversations:
        c.logs = sorted(c.escalations.all(), key=lambda log: (log.triggered_at, log.id))

    series = []
    for i in range(filters.days):
        day = filters.start + timedelta(days=i)
        rates = _rates([c for c in conversations if local_day(c.created_at) == day])
        series.append(
            {
                "day": day,
                "conversations": rates["conversations"],
                "ai_resolution_rate": rates["ai_resolution_rate"],
                "escalation_rate": rates["escalation_rate"],
                "abandonment_rate": rates["abandonment_rate"],
            }
        )

    reasons = Counter((log.trigger, log.rule_id) for c in conversations for log in c.logs)
    rule_names = dict(EscalationRule.objects.values_list("id", "name"))
    labels = dict(Trigger.choices)
    escalation_reasons = sorted(
        (
            {
                "trigger": trigger,
                "label": labels.get(trigger, trigger),
                "rule_id": rule_id,
                "rule_name": rule_names.get(rule_id),
                "count": n,
            }
            for (trigger, rule_id), n in reasons.items()
        ),
        key=lambda r: (-r["count"], r["trigger"], r["rule_id"] or 0),
    )

    resolution = defaultdict(list)
    for c in conversations:
        if c.resolution in ("bot", "agent") and c.resolved_at:
            resolution[c.resolution].append(seconds(c.created_at, c.resolved_at))
    times = {
        "time_to_escalation": _p(
            [seconds(c.created_at, c.logs[0].triggered_at) for c in conversations if c.logs]
        ),
        "first_response": _p(
            [
                seconds(log.triggered_at, log.first_response_at)
                for c in conversations
                for log in c.logs
                if log.first_response_at
            ]
        ),
        "resolution_bot": _p(resolution["bot"]),
        "resolution_agent": _p(resolution["agent"]),
    }

    stays = {status: [] for status in STALL_STATUSES}
    for c in conversations:
        since = c.created_at
        for transition in c.transitions.all():  # ordered by id
            if transition.from_status in stays:
                stays[transition.from_status].append(seconds(since, transition.created_at))
            since = transition.created_at
    statuses = dict(Conversation.Status.choices)
    time_in_status = [
        {
            "status": status,
            "label": statuses[status],
            "avg_seconds": round(sum(spans) / len(spans)) if spans else None,
            "n": len(spans),
        }
        for status, spans in stays.items()
    ]

    rated = [c for c in conversations if c.csat is not None]
    csat = {
        "bot": _csat([c.csat for c in rated if c.resolution == "bot"]),
        "agent": _csat([c.csat for c in rated if c.resolution == "agent"]),
        "all": _csat([c.csat for c in rated]),
    }

    heatmap = [[0] * 24 for _ in range(7)]
    for c in conversations:
        local = c.created_at.astimezone(day_start(filters.start).tzinfo)
        heatmap[local.weekday()][local.hour] += 1

    bots = Bot.objects.filter(organization_id=filters.organization_id)
    if filters.bot_id is not None:
        bots = bots.filter(pk=filters.bot_id)
    per_bot = Counter(c.bot_id for c in conversations)
    per_channel = Counter(c.channel for c in conversations)
    channels = dict(Conversation.Channel.choices)

    bot_turns = [m for c in conversations for m in c.messages.all() if m.sender == "ai"]
    outcomes = Counter(m.outcome for m in bot_turns)
    weak = defaultdict(lambda: [0, 0])
    for m in bot_turns:
        if m.feedback == -1 or m.outcome == "low_confidence":
            for key in weak_sources(m.citations, (m.trace or {}).get("intent")):
                weak[key][0] += m.feedback == -1
                weak[key][1] += m.outcome == "low_confidence"
    ranked = sorted(weak.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), -kv[1][0], kv[0]))

    return {
        "period": {"start": filters.start, "end": filters.end, "days": filters.days},
        "totals": _rates(conversations),
        "series": series,
        "escalation_reasons": escalation_reasons,
        "times": times,
        "time_in_status": time_in_status,
        "csat": csat,
        "heatmap": heatmap,
        "volume_by_bot": sorted(
            ({"bot_id": b.pk, "name": b.name, "conversations": per_bot[b.pk]} for b in bots),
            key=lambda b: (-b["conversations"], b["name"], b["bot_id"]),
        ),
        "volume_by_channel": [
            {"channel": ch, "label": channels[ch], "conversations": per_channel[ch]}
            for ch in CHANNELS
            if filters.channel in (None, ch)
        ],
        "quality": {
            "turns": sum(outcomes[o] for o in outcomes if o),
            "answered": outcomes["answered"],
            "hedged": outcomes["low_confidence"],
            "clarifying": outcomes["clarified"],
            "out_of_scope": outcomes["deflected"],
            "handoff": outcomes["handoff_proposed"] + outcomes["handoff"],
            "thumbs_up": sum(m.feedback == 1 for m in bot_turns),
            "thumbs_down": sum(m.feedback == -1 for m in bot_turns),
            "to_fix": [
                {
                    "source": k.partition(":")[2],
                    "kind": k.partition(":")[0],
                    "thumbs_down": d,
                    "low_confidence": lo,
                }
                for k, (d, lo) in ranked[:TO_FIX]
            ],
        },
        "agents": _agents(conversations),
        "demo": any(c.customer.attributes.get("demo") is True for c in conversations),
    }


def _agents(conversations: list[Conversation]) -> list[dict]:
    handled, resolved = Counter(), Counter()
    first, resolution, scores = defaultdict(list), defaultdict(list), defaultdict(list)
    for c in conversations:
        replies = [
            m for m in c.messages.all() if m.sender == "agent" and not m.internal and m.agent_id
        ]
        people = {m.agent_id for m in replies}
        if c.resolution == "agent" and c.assigned_agent_id:
            people.add(c.assigned_agent_id)
            resolved[c.assigned_agent_id] += 1
            if c.resolved_at:
                resolution[c.assigned_agent_id].append(seconds(c.created_at, c.resolved_at))
            if c.csat is not None:
                scores[c.assigned_agent_id].append(c.csat)
        for person in people:
            handled[person] += 1
        for log in c.logs:
            if log.first_response_at is None:
                continue
            later = [m for m in replies if m.created_at >= log.triggered_at]
            who = later[0].agent_id if later else c.assigned_agent_id
            if who:
                first[who].append(seconds(log.triggered_at, log.first_response_at))
    everyone = set(handled) | set(first)
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in=everyone)}
    rows = [
        {
            "agent_id": pk,
            "name": names.get(pk, ""),
            "handled": handled[pk],
            "resolved": resolved[pk],
            "first_response_p50": percentile(sorted(first[pk]), 50),
            "resolution_p50": percentile(sorted(resolution[pk]), 50),
            "csat_avg": sum(scores[pk]) / len(scores[pk]) if scores[pk] else None,
            "csat_n": len(scores[pk]),
        }
        for pk in everyone
    ]
    rows.sort(key=lambda a: (-a["handled"], a["name"].lower(), a["agent_id"]))
    return rows
