"""Gap questions built by hand: a customer's question and the bot's weak answer to it, at a
chosen time (analytics/gaps.py reads what the pipeline leaves on the answer)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from escalation.models import EscalationLog


def asked(
    bot,
    text: str,
    *,
    customer=None,
    conversation: Conversation | None = None,
    outcome: str = "handoff_proposed",
    category: str = "out_of_scope",
    feedback: int | None = None,
    confirmed: bool | None = None,
    days_ago: float = 1,
    channel: str = "widget",
    bot_missed: bool = False,
) -> Message:
    """The customer's question; the bot's answer replies to it a second later. By default the
    out-of-scope reply (category out_of_scope, a person offered)."""
    if conversation is None:
        conversation = ConversationFactory(
            customer=customer or CustomerFactory(bot=bot), channel=channel, bot_missed=bot_missed
        )
    at = timezone.now() - timedelta(days=days_ago)
    question = MessageFactory(conversation=conversation, sender="user", text=text)
    answer = MessageFactory(
        conversation=conversation,
        sender="ai",
        text="…",
        outcome=outcome,
        trace={"category": category},
        feedback=feedback,
        confirmed=confirmed,
        reply_to=question,
    )
    Message.objects.filter(pk=question.pk).update(created_at=at)
    Message.objects.filter(pk=answer.pk).update(created_at=at + timedelta(seconds=1))
    question.refresh_from_db()
    return question


def handed_off(message: Message, *, after: int = 30, trigger: str = "human_request") -> None:
    """The conversation goes to a person `after` seconds after `message`."""
    log = EscalationLog.objects.create(
        conversation=message.conversation,
        trigger=trigger,
        reason="test",
        priority="medium",
        queue="tier1",
    )
    EscalationLog.objects.filter(pk=log.pk).update(
        triggered_at=message.created_at + timedelta(seconds=after)
    )
