"""Conversations: starting, resuming, and moving them along the state machine."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from bots.models import Bot, User
from conversations.models import Conversation, Customer, Message
from conversations.services.common import (
    HANDOFF_MESSAGE,
    OPEN_STATUSES,
    STATUS_FIELDS,
    ConversationStateError,
    CustomerIdentityError,
    Status,
    _broadcast_conversation,
    _broadcast_message,
    _lock,
    _move,
)


def conversation_start(*, bot: Bot, customer: Customer, channel: str = "widget") -> Conversation:
    if customer.bot_id != bot.pk:
        raise CustomerIdentityError("This customer belongs to another bot.")
    if channel not in Conversation.Channel.values:
        raise ValueError(f"Unknown channel {channel!r}.")
    with transaction.atomic():
        conversation = Conversation.objects.create(bot=bot, customer=customer, channel=channel)
        _broadcast_conversation("conversation.created", conversation, to_customer=False)
    return conversation


def conversation_resume(
    *, bot: Bot, customer: Customer | None, conversation_id: int | None, channel: str = "widget"
) -> Conversation | None:
    """The conversation a returning widget continues: the one it names if it is the customer's
    own and not closed, else their latest open one, on the same channel (a Playground test
    never continues a real chat); None if there is none. Nothing is created here: a
    conversation starts with its first message (message_add_first) or request for a person,
    so visitors who only open the widget leave no empty conversations. An id of someone
    else's conversation is treated as no id at all (no error that would confirm it exists)."""
    if customer is None:
        return None
    own = Conversation.objects.filter(bot=bot, customer=customer, channel=channel)
    if conversation_id:
        named = own.exclude(status=Status.CLOSED).filter(pk=conversation_id).first()
        # A resolved one past its reopen window is as good as closed (the worker closes it
        # within a minute): the next message starts a new conversation.
        if named is not None and not reopen_window_over(named):
            return named
    return own.filter(status__in=OPEN_STATUSES).order_by("-created_at", "-pk").first()


def conversation_set_status(
    *,
    conversation: Conversation,
    status: str,
    agent: User | None = None,
    actor: User | None = None,
    reason: str = "",
    resolution: str = "",
) -> Conversation:
    """Move the conversation along the state machine (TRANSITIONS); the same status is a no-op.

    Locks the conversation row. `agent` is who takes it when it becomes active; `resolution`
    who resolved it, for resolved or closed. Raises ConversationStateError for a move the
    machine does not allow.
    """
    if status not in Status.values:
        raise ValueError(f"Unknown status {status!r}.")
    with transaction.atomic():
        _lock(conversation)
        if conversation.status == status:
            return conversation
        _move(conversation, status, agent=agent, actor=actor, reason=reason, resolution=resolution)
        conversation.save(update_fields=[*STATUS_FIELDS, "updated_at"])
        _broadcast_conversation("conversation.updated", conversation)
    return conversation


def conversation_handoff(
    *,
    conversation: Conversation,
    reason: str,
    priority: str | None = None,
    queue: str | None = None,
    actor: User | None = None,
    notice: str = HANDOFF_MESSAGE,
    notice_extras: dict | None = None,
) -> bool:
    """Hand the conversation to people: it joins the queue (waiting) and the customer is told
    (`notice`, a system message with `notice_extras`: out of hours, when to expect an answer).
    Returns whether it was handed off now.

    Idempotent: a conversation already waiting or with an agent (active, or awaiting the
    customer after the agent's reply) is left unchanged (False).
    Locks the conversation row; a bot answer still being written is then refused by
    message_complete. An agent's first answer is due `bot.response_minutes` from now.
    Callers outside this app go through escalation.services.escalation_open, which also
    writes the EscalationLog.
    """
    if priority is not None and priority not in Conversation.Priority.values:
        raise ValueError(f"Unknown priority {priority!r}.")
    if queue is not None and queue not in Conversation.Queue.values:
        raise ValueError(f"Unknown queue {queue!r}.")
    with transaction.atomic():
        _lock(conversation)
        if conversation.status == Status.WAITING or conversation.with_agent:
            return False
        _move(conversation, Status.WAITING, actor=actor, reason=reason)
        conversation.handoff_reason = reason.strip()[:200]
        conversation.handoff_at = timezone.now()
        conversation.response_due_at = conversation.handoff_at + timedelta(
            minutes=conversation.bot.response_minutes
        )
        if priority:
            conversation.priority = priority
        if queue:
            conversation.queue = queue
        conversation.save(
            update_fields=[*STATUS_FIELDS, "priority", "queue", "response_due_at", "updated_at"]
        )
        message = Message.objects.create(
            conversation=conversation,
            sender=Message.Sender.SYSTEM,
            text=notice,
            extras=notice_extras or {},
        )
        _broadcast_message("message.created", message)
        _broadcast_conversation("conversation.updated", conversation)
    return True


def conversation_set_priority(*, conversation: Conversation, priority: str) -> Conversation:
    if priority not in Conversation.Priority.values:
        raise ValueError(f"Unknown priority {priority!r}.")
    with transaction.atomic():
        _lock(conversation)
        conversation.priority = priority
        conversation.save(update_fields=["priority", "updated_at"])
        _broadcast_conversation("conversation.updated", conversation, to_customer=False)
    return conversation


CSAT_COMMENT_MAX = 2000


def conversation_rate(*, conversation: Conversation, score: int, comment: str = "") -> Conversation:
    """The customer's satisfaction, 1–5 with an optional comment, once the conversation is
    resolved (by the bot or an agent; or closed after it was). Asked once per conversation:
    a second rating raises ConversationStateError, as does rating one not resolved yet.
    Locks the conversation row, so two ratings at once are one rating and one refusal."""
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValueError("Rate the conversation from 1 to 5.")
    if not isinstance(comment, str):
        raise ValueError("The comment must be text.")
    comment = comment.replace("\x00", "").strip()
    if len(comment) > CSAT_COMMENT_MAX:
        raise ValueError(f"The comment is longer than {CSAT_COMMENT_MAX} characters.")
    with transaction.atomic():
        _lock(conversation)
        if conversation.csat is not None:
            raise ConversationStateError("This conversation has already been rated. Thank you!")
        resolved = (Conversation.Resolution.BOT, Conversation.Resolution.AGENT)
        ended = conversation.status == Status.RESOLVED or (
            conversation.status == Status.CLOSED and conversation.resolution in resolved
        )
        if not ended:
            raise ConversationStateError("A conversation is rated once it is resolved.")
        conversation.csat = score
        conversation.csat_comment = comment
        conversation.csat_at = timezone.now()
        conversation.save(update_fields=["csat", "csat_comment", "csat_at", "updated_at"])
        # The widget's other tabs stop asking.
        _broadcast_conversation("conversation.updated", conversation)
    return conversation


def reopen_window_over(conversation: Conversation, *, now=None) -> bool:
    """A resolved conversation the customer can no longer reopen: resolved more than the bot's
    `reopen_hours` ago. The inactivity sweep closes it; a message to it is refused."""
    if conversation.status != Status.RESOLVED or conversation.resolved_at is None:
        return False
    window = timedelta(hours=conversation.bot.reopen_hours)
    return conversation.resolved_at + window <= (now or timezone.now())
