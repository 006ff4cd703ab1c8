"""The response deadline: a handed-off conversation nobody answers in time is raised a level.

`conversation_handoff` sets `response_due_at` to the handoff plus the bot's `response_minutes`.
The worker's every-minute schedule (escalation/tasks.py) finds waiting conversations past it
with no agent message since the handoff, raises their priority one level (low → medium → high
→ urgent; urgent stays), sets the next deadline another `response_minutes` on, leaves an
internal note saying so, and notifies the queue again (escalation/notifications.py: only at
high and urgent, so a conversation that reaches high only now is notified for the first time).

The priority change goes through `conversation_set_priority`, which pushes it to the console's
queue. The push leaves from the worker, so it reaches open consoles only through a shared
channel layer (REDIS_URL); without one the console picks the change up on its next refresh.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from config.claims import claim_due
from conversations.models import Conversation, Message
from conversations.services import conversation_set_priority, message_add_system
from escalation.notifications import notifications_for_conversation

Priority = Conversation.Priority
Status = Conversation.Status

NEXT_PRIORITY = {
    Priority.LOW: Priority.MEDIUM,
    Priority.MEDIUM: Priority.HIGH,
    Priority.HIGH: Priority.URGENT,
    Priority.URGENT: Priority.URGENT,
}
# Conversations one sweep looks at; the rest wait a minute for the next one.
SWEEP_BATCH = 200


def conversations_raise_overdue() -> int:
    """Raise every waiting conversation past its deadline, one transaction each. Returns how
    many were raised.

    Rows another sweep holds are skipped (skip_locked), and a raised row's deadline moves into
    the future before its lock is released, so concurrent sweeps never raise one twice.
    """
    now = timezone.now()
    overdue = (
        Conversation.objects.select_related("bot__organization", "customer")
        .filter(status=Status.WAITING, response_due_at__lte=now)
        .order_by("response_due_at", "id")
    )
    raised = claim_due(
        overdue,
        lambda conversation: conversation_raise_overdue(conversation=conversation, now=now),
        limit=SWEEP_BATCH,
    )
    return sum(raised)


def conversation_raise_overdue(*, conversation: Conversation, now: datetime | None = None) -> bool:
    """Raise one conversation if, under its row lock, it still waits past its deadline with no
    agent answer since the handoff. Returns whether it was raised.

    A conversation an agent did answer (then put back in the queue) has met its deadline: the
    deadline is cleared, so sweeps stop looking at it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        conversation.refresh_from_db(
            from_queryset=Conversation.objects.select_for_update(of=("self",))
        )
        due = conversation.response_due_at
        if conversation.status != Status.WAITING or due is None or due > now:
            return False
        since = conversation.handoff_at or conversation.created_at
        answered = Message.objects.filter(
            conversation=conversation,
            sender=Message.Sender.AGENT,
            internal=False,
            created_at__gte=since,
        ).exists()
        if answered:
            Conversation.objects.filter(pk=conversation.pk).update(response_due_at=None)
            conversation.response_due_at = None
            return False

        bot = conversation.bot
        minutes = max(1, round((now - since).total_seconds() / 60))
        old, new = conversation.priority, NEXT_PRIORITY[conversation.priority]
        next_due = now + timedelta(minutes=bot.response_minutes)
        # Saved before conversation_set_priority, which re-reads the row under its lock.
        Conversation.objects.filter(pk=conversation.pk).update(response_due_at=next_due)
        conversation.response_due_at = next_due
        if new != old:
            conversation_set_priority(conversation=conversation, priority=new)
        label = conversation.get_priority_display().lower()
        notified = notifications_for_conversation(
            conversation=conversation,
            reason=f"No agent has answered for {minutes} minutes; the priority is now {label}.",
        )
        if new != old:
            note = f"No answer for {minutes} minutes: priority raised to {label}"
        else:
            note = f"No answer for {minutes} minutes: still {label}"
        if notified:
            note += f"; the {conversation.get_queue_display()} queue was notified again"
        message_add_system(conversation=conversation, text=note + ".", internal=True)
    return True
