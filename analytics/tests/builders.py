"""Conversations built by hand at chosen instants in the past, for the figures' tests.

Every timestamp the factories would stamp with "now" (auto_now_add) is set afterwards with
`.update()`, which neither auto_now nor auto_now_add touches.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from conversations.models import Conversation, Message, Transition
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from escalation.models import EscalationLog


def conversation(
    bot,
    *,
    at: datetime,
    channel: str = "widget",
    status: str = "ai",
    resolution: str = "",
    resolved_after: int | None = None,
    csat: int | None = None,
    agent=None,
    customer=None,
) -> Conversation:
    c = ConversationFactory(
        customer=customer or CustomerFactory(bot=bot),
        channel=channel,
        status=status,
        resolution=resolution,
        csat=csat,
        assigned_agent=agent,
    )
    resolved_at = at + timedelta(seconds=resolved_after) if resolved_after is not None else None
    Conversation.objects.filter(pk=c.pk).update(
        created_at=at,
        resolved_at=resolved_at,
        csat_at=resolved_at + timedelta(seconds=5) if csat is not None and resolved_at else None,
    )
    c.refresh_from_db()
    return c


def message(
    c: Conversation,
    *,
    after: int,
    sender: str = "ai",
    outcome: str = "",
    feedback: int | None = None,
    citations: list | None = None,
    trace: dict | None = None,
    agent=None,
    internal: bool = False,
) -> Message:
    m = MessageFactory(
        conversation=c,
        sender=sender,
        outcome=outcome,
        feedback=feedback,
        citations=citations or [],
        trace=trace or {},
        agent=agent,
        internal=internal,
    )
    Message.objects.filter(pk=m.pk).update(created_at=c.created_at + timedelta(seconds=after))
    return m


def moves(c: Conversation, *steps: tuple[int, str]) -> None:
    """Transitions from the conversation's start: (seconds after the start, new status)...
    starting from ai."""
    status = "ai"
    for after, to_status in steps:
        t = Transition.objects.create(conversation=c, from_status=status, to_status=to_status)
        Transition.objects.filter(pk=t.pk).update(
            created_at=c.created_at + timedelta(seconds=after)
        )
        status = to_status


def escalation(
    c: Conversation,
    *,
    after: int,
    trigger: str = "human_request",
    rule=None,
    responded_after: int | None = None,
) -> EscalationLog:
    log = EscalationLog.objects.create(
        conversation=c,
        rule=rule,
        trigger=trigger,
        reason="test",
        priority="medium",
        queue="tier1",
    )
    triggered_at = c.created_at + timedelta(seconds=after)
    EscalationLog.objects.filter(pk=log.pk).update(
        triggered_at=triggered_at,
        first_response_at=triggered_at + timedelta(seconds=responded_after)
        if responded_after is not None
        else None,
    )
    log.refresh_from_db()
    return log
