"""How conversations end (README, "How a conversation ends"): the customer's answer to "Did
that answer your question?", and the worker's sweep that ends conversations the customer left.

Who resolved a conversation is `Conversation.resolution`: `agent` when an agent resolves it
(escalation.services.conversation_resolve), `bot` when the customer says the bot's answer
helped or leaves after a cited answer without a sign of dissatisfaction, `abandoned` when the
customer leaves any other way. What "No" does next (offer a person, or hand off) is the bot's
`not_answered` setting, applied by escalation.services.conversation_answer_rejected.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Value
from django.utils import timezone

from config.claims import claim_due
from conversations.models import Conversation, Level, Message
from conversations.services.common import (
    STATUS_FIELDS,
    ConversationStateError,
    Status,
    _broadcast_conversation,
    _broadcast_message,
    _lock,
    _move,
)

Resolution = Conversation.Resolution

# Customer levels that count as dissatisfaction: the bot did not resolve a conversation in
# which the customer was frustrated, angry or urgent, whatever they did next.
NEGATIVE_LEVELS = (Level.FRUSTRATED, Level.ANGRY, Level.URGENT)
OFFER_PERSON_MESSAGE = "Sorry that didn't help. Would you like to talk to a person?"
# Conversations one sweep ends; the rest wait a minute for the next one.
SWEEP_BATCH = 200


def _answer_to_confirm(conversation: Conversation, message_id: int) -> Message:
    """The bot's answer the customer says helped or not, on a locked conversation: only the
    bot's latest answer, an `answered` one, while the conversation waits for the customer with
    the bot, and once."""
    if not (conversation.status == Status.AWAITING and conversation.with_bot):
        raise ConversationStateError(
            f"This conversation is “{conversation.get_status_display()}”: "
            "there is no answer of the bot to confirm."
        )
    latest = (
        conversation.messages.filter(sender=Message.Sender.AI, state=Message.State.COMPLETE)
        .order_by("-id")
        .first()
    )
    if latest is None or latest.pk != message_id:
        raise ConversationStateError("Only the bot's latest answer can be confirmed.")
    if latest.outcome != Message.Outcome.ANSWERED:
        raise ConversationStateError("That message was not an answer to confirm.")
    if latest.confirmed is not None:
        raise ConversationStateError("You already told us whether this answer helped.")
    return latest


def conversation_resolve_by_customer(*, conversation: Conversation, message_id: int) -> Message:
    """The customer's "Yes" to "Did that answer your question?" on the bot's answer
    `message_id`: the conversation is resolved by the bot, and the customer is asked to rate
    it. Returns the answer, marked confirmed. Locks the conversation row; raises
    ConversationStateError when there is no such answer to confirm (see _answer_to_confirm)."""
    with transaction.atomic():
        _lock(conversation)
        message = _answer_to_confirm(conversation, message_id)
        message.confirmed = True
        message.save(update_fields=["confirmed", "updated_at"])
        _move(
            conversation,
            Status.RESOLVED,
            reason="The customer said the answer helped",
            resolution=Resolution.BOT,
        )
        conversation.save(update_fields=[*STATUS_FIELDS, "updated_at"])
        _broadcast_message("message.updated", message)
        _broadcast_conversation("conversation.updated", conversation)
    return message


def message_answer_rejected(
    *, conversation: Conversation, message_id: int, offer_person: bool
) -> Message:
    """The customer's "No" to "Did that answer your question?" on the bot's answer
    `message_id`: recorded on the answer (a negative signal: the inactivity sweep never counts
    this conversation as resolved by the bot). With `offer_person` the customer is offered a
    person (a system message with `offer_human`); the conversation stays with the bot. A
    handoff instead is escalation's (escalation.services.conversation_answer_rejected), in the
    caller's transaction. Locks the conversation row."""
    with transaction.atomic():
        _lock(conversation)
        message = _answer_to_confirm(conversation, message_id)
        message.confirmed = False
        message.save(update_fields=["confirmed", "updated_at"])
        _broadcast_message("message.updated", message)
        if offer_person:
            notice = Message.objects.create(
                conversation=conversation,
                sender=Message.Sender.SYSTEM,
                text=OFFER_PERSON_MESSAGE,
                extras={"offer_human": True},
            )
            _broadcast_message("message.created", notice)
    return message


# --- The worker's sweep -------------------------------------------------------------------------
def conversations_close_idle(*, now: datetime | None = None) -> int:
    """End every conversation that has waited for the customer, with the bot, longer than its
    bot's `inactivity_minutes`, one transaction each (conversation_close_idle). Returns how many.

    Rows another sweep holds are skipped (config.claims.claim_due) and an ended one no longer
    matches, so concurrent sweeps never end one twice.
    """
    now = now or timezone.now()
    window = ExpressionWrapper(
        F("bot__inactivity_minutes") * Value(timedelta(minutes=1)), output_field=DurationField()
    )
    idle_before = ExpressionWrapper(Value(now) - window, output_field=DateTimeField())
    idle = (
        Conversation.objects.select_related("bot")
        .filter(
            status=Status.AWAITING,
            assigned_agent__isnull=True,
            last_message_at__lte=idle_before,
        )
        .order_by("last_message_at", "id")
    )
    ended = claim_due(
        idle,
        lambda conversation: conversation_close_idle(conversation=conversation, now=now),
        limit=SWEEP_BATCH,
    )
    return sum(1 for resolution in ended if resolution)


def conversation_close_idle(*, conversation: Conversation, now: datetime | None = None) -> str:
    """End one conversation the customer left after the bot's answer, if under its row lock it
    still waits for the customer with the bot past the inactivity window. Returns the
    resolution it ended with ("" if it was not ended).

    Resolved by the bot only if the bot's last answer was `answered` with sources and the
    customer gave no negative signal (a thumbs down, a "No", a frustrated, angry or urgent
    message); it then stays reopenable for the bot's `reopen_hours`. Otherwise it is closed as
    abandoned.
    """
    now = now or timezone.now()
    with transaction.atomic():
        _lock(conversation)
        minutes = conversation.bot.inactivity_minutes
        last_at = conversation.last_message_at
        if not (conversation.status == Status.AWAITING and conversation.with_bot):
            return ""
        if last_at is None or last_at + timedelta(minutes=minutes) > now:
            return ""
        if _bot_resolved(conversation):
            _move(
                conversation,
                Status.RESOLVED,
                reason=f"No reply for {minutes} minutes after an answer with sources",
                resolution=Resolution.BOT,
            )
        else:
            _move(
                conversation,
                Status.CLOSED,
                reason=f"No reply for {minutes} minutes without a resolving answer",
                resolution=Resolution.ABANDONED,
            )
        conversation.save(update_fields=[*STATUS_FIELDS, "updated_at"])
        _broadcast_conversation("conversation.updated", conversation)
        return conversation.resolution


def _bot_resolved(conversation: Conversation) -> bool:
    messages = conversation.messages
    last = (
        messages.filter(sender=Message.Sender.AI, state=Message.State.COMPLETE)
        .order_by("-id")
        .first()
    )
    if last is None or last.outcome != Message.Outcome.ANSWERED or not last.citations:
        return False
    disliked = messages.filter(sender=Message.Sender.AI, feedback=-1).exists()
    rejected = messages.filter(sender=Message.Sender.AI, confirmed=False).exists()
    upset = (
        conversation.sentiment_level in NEGATIVE_LEVELS
        or messages.filter(
            sender=Message.Sender.USER, trace__escalation__level__in=list(NEGATIVE_LEVELS)
        ).exists()
    )
    return not (disliked or rejected or upset)


def conversations_close_expired(*, now: datetime | None = None) -> int:
    """Close every resolved conversation past its bot's reopen window (`reopen_hours` after it
    was resolved), keeping who resolved it; a message from the customer then starts a new
    conversation. Returns how many. Safe with concurrent sweeps, as conversations_close_idle."""
    now = now or timezone.now()
    window = ExpressionWrapper(
        F("bot__reopen_hours") * Value(timedelta(hours=1)), output_field=DurationField()
    )
    resolved_before = ExpressionWrapper(Value(now) - window, output_field=DateTimeField())
    expired = (
        Conversation.objects.select_related("bot")
        .filter(status=Status.RESOLVED, resolved_at__lte=resolved_before)
        .order_by("resolved_at", "id")
    )
    closed = claim_due(
        expired,
        lambda conversation: _close_expired(conversation=conversation, now=now),
        limit=SWEEP_BATCH,
    )
    return sum(closed)


def _close_expired(*, conversation: Conversation, now: datetime) -> bool:
    with transaction.atomic():
        _lock(conversation)
        hours = conversation.bot.reopen_hours
        resolved_at = conversation.resolved_at
        if conversation.status != Status.RESOLVED or resolved_at is None:
            return False
        if resolved_at + timedelta(hours=hours) > now:
            return False
        _move(conversation, Status.CLOSED, reason=f"Not reopened within {hours} hours")
        conversation.save(update_fields=[*STATUS_FIELDS, "updated_at"])
        _broadcast_conversation("conversation.updated", conversation)
    return True
