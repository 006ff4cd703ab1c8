"""Computing the rollup rows of some days from the source rows (analytics/services.py stores
them). Each day is recomputed whole from what the database holds now, never adjusted by
deltas: that is what makes a refresh idempotent and lets it run again over the same days.

Message counts are aggregated in PostgreSQL (a day has ten times more messages than
conversations); the few rows that need reading one by one (transitions, escalations, agents'
replies, weak answers) are read as tuples.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db.models import Count, Q

from analytics.definitions import (
    ENDED_STATUSES,
    OUTCOMES,
    PLAYGROUND,
    STALL_STATUSES,
    day_bounds,
    hour_of_week,
    local_day,
    reason_key,
    seconds,
    weak_sources,
)
from analytics.models import AgentDailyRollup, DailyRollup
from conversations.models import Conversation, Message, Transition
from escalation.models import EscalationLog

Resolution = Conversation.Resolution


class _Conversation:
    __slots__ = ("row", "created_at", "assigned", "resolution", "resolved_at", "csat", "key")

    def __init__(self, row, created_at, assigned, resolution, resolved_at, csat, key):
        self.row = row
        self.created_at = created_at
        self.assigned = assigned
        self.resolution = resolution
        self.resolved_at = resolved_at
        self.csat = csat
        self.key = key  # (day, bot_id, channel)


def compute(
    *, organization_id: int, first: date, last: date
) -> tuple[list[DailyRollup], list[AgentDailyRollup]]:
    """The unsaved rollup rows of the conversations of `organization_id` that started on the
    days first..last (inclusive, settings.TIME_ZONE), playground excluded."""
    start, end = day_bounds(first, last)
    started = Q(
        bot__organization_id=organization_id, created_at__gte=start, created_at__lt=end
    ) & ~Q(channel=PLAYGROUND)
    # The same conversations, seen from their messages, transitions and escalations.
    of_them = Q(
        conversation__bot__organization_id=organization_id,
        conversation__created_at__gte=start,
        conversation__created_at__lt=end,
    ) & ~Q(conversation__channel=PLAYGROUND)

    rows: dict[tuple, DailyRollup] = {}
    conversations: dict[int, _Conversation] = {}
    fields = (
        "id",
        "bot_id",
        "channel",
        "status",
        "resolution",
        "created_at",
        "resolved_at",
        "csat",
        "assigned_agent_id",
        "customer__attributes__demo",
    )
    for pk, bot_id, channel, status, resolution, created, resolved_at, csat, assigned, demo in (
        Conversation.objects.filter(started).order_by().values_list(*fields)
    ):
        key = (local_day(created), bot_id, channel)
        row = rows.get(key)
        if row is None:
            row = rows[key] = DailyRollup(
                organization_id=organization_id, day=key[0], bot_id=bot_id, channel=channel
            )
        conversations[pk] = _Conversation(
            row, created, assigned, resolution, resolved_at, csat, key
        )
        row.conversations += 1
        row.ended += status in ENDED_STATUSES
        row.demo += demo is True
        row.hours[hour_of_week(created)] += 1
        if resolution == Resolution.BOT:
            row.bot_resolved += 1
            if resolved_at:
                row.resolution_bot.append(seconds(created, resolved_at))
        elif resolution == Resolution.AGENT:
            row.agent_resolved += 1
            if resolved_at:
                row.resolution_agent.append(seconds(created, resolved_at))
        elif resolution == Resolution.ABANDONED:
            row.abandoned += 1
        if csat is not None and 1 <= csat <= 5:
            row.csat_all[csat - 1] += 1
            if resolution == Resolution.BOT:
                row.csat_bot[csat - 1] += 1
            elif resolution == Resolution.AGENT:
                row.csat_agent[csat - 1] += 1

    _turns(of_them, conversations)
    _stays(of_them, conversations)
    replies = _replies(of_them)
    responders = _escalations(of_them, conversations, replies)
    agents = _agents(organization_id, conversations, replies, responders)

    for row in rows.values():
        for durations in (
            row.time_to_escalation,
            row.first_response,
            row.resolution_bot,
            row.resolution_agent,
        ):
            durations.sort()  # sorted runs make merging them for a period cheap
    return list(rows.values()), agents


def _turns(of_them: Q, conversations: dict[int, _Conversation]) -> None:
    """The bot's turns by outcome and their thumbs, counted in the database; then the sources
    of the weak ones (thumbs down, low confidence), read one by one."""
    counted = (
        Message.objects.filter(of_them, sender=Message.Sender.AI)
        .order_by()
        .values_list("conversation_id", "outcome", "feedback")
        .annotate(n=Count("id"))
    )
    for conversation_id, outcome, feedback, n in counted:
        conversation = conversations.get(conversation_id)
        if conversation is None:  # started after the conversations were read: next run
            continue
        row = conversation.row
        if outcome in OUTCOMES:
            setattr(row, outcome, getattr(row, outcome) + n)
        if feedback == 1:
            row.thumbs_up += n
        elif feedback == -1:
            row.thumbs_down += n
    weak = (
        Message.objects.filter(of_them, sender=Message.Sender.AI)
        .filter(Q(feedback=-1) | Q(outcome=Message.Outcome.LOW_CONFIDENCE))
        .order_by()
        .values_list("conversation_id", "feedback", "outcome", "citations", "trace__intent")
    )
    for conversation_id, feedback, outcome, citations, intent in weak:
        conversation = conversations.get(conversation_id)
        if conversation is None:
            continue
        for key in weak_sources(citations, intent):
            counts = conversation.row.weak_sources.setdefault(key, [0, 0])
            counts[0] += feedback == -1
            counts[1] += outcome == Message.Outcome.LOW_CONFIDENCE


def _stays(of_them: Q, conversations: dict[int, _Conversation]) -> None:
    """Time in each status: from the conversation's start (or the previous transition) to the
    transition that left the status. A stay still going on is not counted."""
    previous: dict[int, object] = {}
    transitions = (
        Transition.objects.filter(of_them)
        .order_by("conversation_id", "id")
        .values_list("conversation_id", "from_status", "created_at")
    )
    for conversation_id, status, at in transitions.iterator(chunk_size=5000):
        conversation = conversations.get(conversation_id)
        if conversation is None:
            continue
        since = previous.get(conversation_id, conversation.created_at)
        previous[conversation_id] = at
        if status in STALL_STATUSES:
            stay = conversation.row.time_in_status.setdefault(status, [0, 0])
            stay[0] += seconds(since, at)
            stay[1] += 1


def _replies(of_them: Q) -> dict[int, list[tuple]]:
    """Agents' replies to the customer (not internal notes), per conversation, oldest first."""
    replies: dict[int, list[tuple]] = defaultdict(list)
    rows = (
        Message.objects.filter(
            of_them, sender=Message.Sender.AGENT, internal=False, agent__isnull=False
        )
        .order_by("conversation_id", "created_at", "id")
        .values_list("conversation_id", "created_at", "agent_id")
    )
    for conversation_id, at, agent_id in rows.iterator(chunk_size=5000):
        replies[conversation_id].append((at, agent_id))
    return replies


def _responder(replies: list[tuple], triggered_at, assigned: int | None) -> int | None:
    """Who answered an escalation first: the author of the first reply at or after it, else
    the conversation's agent (who holds or held it)."""
    for at, agent_id in replies:
        if at >= triggered_at:
            return agent_id
    return assigned


def _escalations(
    of_them: Q, conversations: dict[int, _Conversation], replies: dict[int, list[tuple]]
) -> list[tuple[_Conversation, int, int]]:
    """Escalation counts, reasons and times; returns (conversation, agent, first response
    seconds) for the agents' rows."""
    logs = (
        EscalationLog.objects.filter(of_them)
        .order_by("conversation_id", "triggered_at", "id")
        .values_list("conversation_id", "trigger", "rule_id", "triggered_at", "first_response_at")
    )
    seen: set[int] = set()
    responded: list[tuple[_Conversation, int, int]] = []
    for conversation_id, trigger, rule_id, triggered_at, first_response_at in logs:
        conversation = conversations.get(conversation_id)
        if conversation is None:
            continue
        row = conversation.row
        if conversation_id not in seen:
            seen.add(conversation_id)
            row.escalated += 1
            row.time_to_escalation.append(seconds(conversation.created_at, triggered_at))
        key = reason_key(trigger, rule_id)
        row.escalation_reasons[key] = row.escalation_reasons.get(key, 0) + 1
        if first_response_at is not None:
            wait = seconds(triggered_at, first_response_at)
            row.first_response.append(wait)
            agent = _responder(
                replies.get(conversation_id, []), triggered_at, conversation.assigned
            )
            if agent is not None:
                responded.append((conversation, agent, wait))
    return responded


def _agents(
    organization_id: int,
    conversations: dict[int, _Conversation],
    replies: dict[int, list[tuple]],
    responders: list[tuple[_Conversation, int, int]],
) -> list[AgentDailyRollup]:
    rows: dict[tuple, AgentDailyRollup] = {}

    def row_of(conversation: _Conversation, agent_id: int) -> AgentDailyRollup:
        day, bot_id, channel = conversation.key
        key = (agent_id, *conversation.key)
        if key not in rows:
            rows[key] = AgentDailyRollup(
                organization_id=organization_id,
                agent_id=agent_id,
                day=day,
                bot_id=bot_id,
                channel=channel,
            )
        return rows[key]

    for pk, conversation in conversations.items():
        handled = {agent_id for _, agent_id in replies.get(pk, [])}
        resolver = conversation.assigned if conversation.resolution == Resolution.AGENT else None
        if resolver is not None:
            handled.add(resolver)
            row = row_of(conversation, resolver)
            row.resolved += 1
            if conversation.resolved_at:
                row.resolution.append(seconds(conversation.created_at, conversation.resolved_at))
            if conversation.csat is not None and 1 <= conversation.csat <= 5:
                row.csat_sum += conversation.csat
                row.csat_n += 1
        for agent_id in handled:
            row_of(conversation, agent_id).handled += 1
    for conversation, agent_id, wait in responders:
        row_of(conversation, agent_id).first_response.append(wait)
    for row in rows.values():
        row.first_response.sort()
        row.resolution.sort()
    return list(rows.values())
