"""Reads for the agent console, scoped to a member of the organization (404 for anyone else).

The queue is the one list every member sees alike (it is pushed to the organization's group as
one partial); "mine" and "with the bot" are per member or polled.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import (
    Case,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Now
from django.shortcuts import get_object_or_404

from bots.models import Membership, Organization
from conversations.models import Conversation, Message
from escalation import package as handoff_package
from escalation.models import EscalationLog

Status = Conversation.Status
Priority = Conversation.Priority

# Most pressing first.
PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.MEDIUM: 2, Priority.LOW: 3}
WITH_BOT_LIMIT = 20


def _unread() -> Coalesce:
    """Customer messages after the agents' seen mark, per conversation, as a subquery."""
    unread = (
        Message.objects.filter(
            conversation=OuterRef("pk"),
            sender=Message.Sender.USER,
            pk__gt=OuterRef("agent_seen_message_id"),
        )
        .order_by()
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(unread, output_field=IntegerField()), Value(0))


def _annotated(organization_id: int) -> QuerySet[Conversation]:
    return (
        Conversation.objects.filter(bot__organization_id=organization_id)
        .select_related("bot", "customer", "assigned_agent")
        .annotate(unread=_unread())
    )


def queue_list(*, organization_id: int) -> QuerySet[Conversation]:
    """Waiting conversations: urgent → low, then the longest waiting first; each with
    `unread` (customer messages no agent has seen) and `waited` (time since the handoff).
    One query. Callers have checked membership (membership_get, the console socket)."""
    rank = Case(
        *[When(priority=p, then=Value(r)) for p, r in PRIORITY_RANK.items()],
        default=Value(len(PRIORITY_RANK)),
        output_field=IntegerField(),
    )
    return (
        _annotated(organization_id)
        .filter(status=Status.WAITING)
        .annotate(
            priority_rank=rank,
            waited=ExpressionWrapper(Now() - F("handoff_at"), output_field=DurationField()),
        )
        .order_by("priority_rank", F("handoff_at").asc(nulls_last=True), "pk")
    )


def mine_list(*, membership: Membership) -> QuerySet[Conversation]:
    """The member's conversations: active, or awaiting the customer after their reply; the one
    with the latest message first."""
    return (
        _annotated(membership.organization_id)
        .filter(status__in=(Status.ACTIVE, Status.AWAITING), assigned_agent_id=membership.user_id)
        .order_by(F("last_message_at").desc(nulls_last=True), "-pk")
    )


def with_bot_list(*, membership: Membership, limit: int = WITH_BOT_LIMIT) -> QuerySet[Conversation]:
    """Open conversations the bot is handling (customers who wrote), answering or awaiting the
    customer after its answer, most recently active first: what an agent may take over."""
    with_bot = Q(status=Status.AI) | Q(status=Status.AWAITING, assigned_agent__isnull=True)
    return (
        _annotated(membership.organization_id)
        .filter(with_bot, last_message_at__isnull=False)
        .order_by("-last_message_at", "-pk")[:limit]
    )


def console_conversation_get(*, membership: Membership, conversation_id: int) -> Conversation:
    """One conversation of the member's organization; any other id is a 404."""
    return get_object_or_404(
        Conversation.objects.select_related("bot", "customer", "assigned_agent"),
        pk=conversation_id,
        bot__organization_id=membership.organization_id,
    )


def escalation_latest(*, conversation: Conversation) -> EscalationLog | None:
    return conversation.escalations.order_by("-triggered_at", "-id").first()


def last_bot_message(*, conversation: Conversation) -> Message | None:
    return (
        conversation.messages.filter(sender=Message.Sender.AI, state=Message.State.COMPLETE)
        .order_by("-id")
        .first()
    )


def transfer_targets(*, organization: Organization) -> QuerySet[Membership]:
    """Members a conversation can be transferred to, online first."""
    rank = Case(
        When(availability="online", then=Value(0)),
        When(availability="away", then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return (
        organization.memberships.select_related("user")
        .annotate(rank=rank)
        .order_by("rank", "user__name", "user__first_name", "user__email")
    )


# What escalation/package.py writes, and the shape of each; lists hold dicts, except signals.
PACKAGE_KEYS = {
    "summary": str,
    "trajectory": list,
    "retrieved": list,
    "drafted": str,
    "drafted_sent": bool,
    "suggested_action": str,
    "signals": list,
    "frustration": (int, float),
    "category": str,
    "expected_reply_at": str,
    "action": dict,
}
# Kept for the record, not for the agent to read.
PACKAGE_HIDDEN = {"message_id"}


def _datetime(value: str):
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return value  # shown as it was stored


def handoff_package_display(*, conversation: Conversation) -> dict:
    """The handoff package of the latest escalation (escalation/package.py fills it), with
    what the conversation itself knows where a key is missing: the handoff reason, its
    sentiment, what the bot last retrieved and wrote."""
    log = escalation_latest(conversation=conversation)
    package = dict(log.package) if log is not None and isinstance(log.package, dict) else {}
    result, other = {}, []
    for key, value in package.items():
        if key in PACKAGE_HIDDEN:
            continue
        # A key of the wrong shape is still shown, as text, rather than dropped or misread.
        if key in PACKAGE_KEYS and isinstance(value, PACKAGE_KEYS[key]):
            if key == "signals":
                value = [item.replace("_", " ") for item in value if isinstance(item, str)]
            elif key == "category":
                value = value.replace("_", " ")
            elif key == "expected_reply_at":
                value = _datetime(value)
            elif isinstance(value, list):
                value = [item for item in value if isinstance(item, dict)]
            result[key] = value
        else:
            other.append((key.replace("_", " ").capitalize(), value))
    result = {key: result.get(key) for key in PACKAGE_KEYS}
    result["other"] = other
    result["reason"] = (log.reason if log is not None else "") or conversation.handoff_reason
    result["trigger"] = log.get_trigger_display() if log is not None else ""
    result["sentiment_level"] = conversation.sentiment_level
    result["sentiment"] = conversation.sentiment
    if not result["retrieved"] or not result["drafted"]:
        last = last_bot_message(conversation=conversation)
        if last is not None:
            if not result["retrieved"]:
                result["retrieved"] = handoff_package.retrieved_by(last)
            if not result["drafted"]:
                result["drafted"] = last.trace.get("unsent_text") or last.text
                result["drafted_sent"] = last.state == Message.State.COMPLETE
    return result
