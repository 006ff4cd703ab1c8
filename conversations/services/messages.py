"""Messages: the customer's, the bot's (pending → complete or failed), agents' and system
notices."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from bots.models import Bot, User
from conversations.assessment import assess_message
from conversations.models import Conversation, Customer, Message
from conversations.sentiment import conversation_sentiment
from conversations.services.common import (
    ANSWER_FIELDS,
    OPEN_STATUSES,
    STATUS_FIELDS,
    ConversationStateError,
    MessageRejected,
    Status,
    _broadcast_conversation,
    _broadcast_message,
    _lock,
    _move,
)
from conversations.services.lifecycle import conversation_start, reopen_window_over

log = logging.getLogger(__name__)

MAX_CLIENT_MESSAGE_ID = Message._meta.get_field("client_message_id").max_length
REOPENED_MESSAGE = "This conversation was reopened."


def message_check(*, text: str, client_message_id: str | None = None) -> None:
    """Raise MessageRejected for a message message_add_user would refuse whatever the
    conversation (not text, empty, too long, a client id too long): checked before a first
    message creates its customer, so a refused one stores nothing."""
    _clean_text(text)
    if client_message_id and len(client_message_id.strip()) > MAX_CLIENT_MESSAGE_ID:
        raise MessageRejected(f"The message id is longer than {MAX_CLIENT_MESSAGE_ID} characters.")


def message_add_first(
    *,
    bot: Bot,
    customer: Customer,
    channel: str,
    text: str,
    client_message_id: str | None = None,
    continue_open: bool = False,
) -> tuple[Message, bool]:
    """The customer's message that starts a conversation; returns (message, created), the
    conversation being `message.conversation`.

    Conversations exist from their first message: the conversation is created with it, in one
    transaction, so a refused message (empty, too long) leaves none behind. A resend of a
    message already stored (its `client_message_id` in one of the customer's conversations on
    this channel: the socket dropped before the widget learnt which) returns it, created=False,
    instead of starting a second conversation. With `continue_open` (the widget: one
    conversation at a time) the customer's open conversation, if another tab just started
    one, takes the message. Locks the customer row, so two first messages at once are
    ordered and the second sees the first's conversation.
    """
    message_check(text=text, client_message_id=client_message_id)
    client_message_id = (client_message_id or "").strip() or None
    with transaction.atomic():
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        own = Conversation.objects.filter(bot=bot, customer=customer, channel=channel)
        if client_message_id:
            sent = (
                Message.objects.filter(conversation__in=own, client_message_id=client_message_id)
                .select_related("conversation")
                .first()
            )
            if sent is not None:
                return sent, False
        conversation = None
        if continue_open:
            conversation = (
                own.filter(status__in=OPEN_STATUSES).order_by("-created_at", "-pk").first()
            )
        if conversation is None:
            conversation = conversation_start(bot=bot, customer=customer, channel=channel)
        return message_add_user(
            conversation=conversation, text=text, client_message_id=client_message_id
        )


def message_add_user(
    *, conversation: Conversation, text: str, client_message_id: str | None = None
) -> tuple[Message, bool]:
    """Store the customer's message; returns (message, created).

    A resend with the same `client_message_id` (after a dropped socket) returns the stored
    message with created=False and broadcasts nothing. Locks the conversation row.

    Awaiting the customer, the message gives the conversation back to whoever holds it, in
    this transaction, before any turn runs: the bot (ai, so it answers) or the agent (active).
    A message to a resolved conversation within the bot's `reopen_hours` reopens it (reason
    "reopened", counted in `reopened_count`, the customer told) where it was resolved from:
    with the bot if the bot resolved it or had it, in the queue (waiting) if it had been
    handed off, since the customer last needed a person. A closed conversation, or a resolved
    one past its window, takes no messages (MessageRejected): the customer starts a new one.
    """
    text = _clean_text(text)
    client_message_id = (client_message_id or "").strip() or None
    if client_message_id and len(client_message_id) > MAX_CLIENT_MESSAGE_ID:
        raise MessageRejected(f"The message id is longer than {MAX_CLIENT_MESSAGE_ID} characters.")
    with transaction.atomic():
        _lock(conversation)
        if client_message_id:
            sent = _sent_message(conversation, client_message_id)
            if sent is not None:
                return sent, False
        if conversation.status == Status.CLOSED or reopen_window_over(conversation):
            raise MessageRejected("This conversation is closed. Start a new one to write again.")
        # Sentiment, signals, level and frustration (conversations/assessment.py), from the earlier
        # messages under the lock, so two messages at once each see the other in order.
        assessment = assess_message(conversation=conversation, text=text)
        try:
            # The row lock already orders two sends of one message; the savepoint keeps the
            # transaction usable should the unique constraint still catch a duplicate.
            with transaction.atomic():
                message = Message.objects.create(
                    conversation=conversation,
                    sender=Message.Sender.USER,
                    text=text,
                    client_message_id=client_message_id,
                    sentiment=assessment.compound,
                    signals=assessment.signals,
                    trace={"sentiment": assessment.compound, "escalation": assessment.trace()},
                )
        except IntegrityError:
            sent = _sent_message(conversation, client_message_id) if client_message_id else None
            if sent is None:
                raise
            return sent, False
        reopened = conversation.status == Status.RESOLVED
        moved = reopened or conversation.status == Status.AWAITING
        if reopened:
            by_bot = conversation.resolution == Conversation.Resolution.BOT
            _move(
                conversation,
                Status.WAITING if conversation.handoff_at and not by_bot else Status.AI,
                reason="reopened",
            )
            conversation.reopened_count += 1
            notice = Message.objects.create(
                conversation=conversation, sender=Message.Sender.SYSTEM, text=REOPENED_MESSAGE
            )
        elif conversation.status == Status.AWAITING:
            held = conversation.assigned_agent_id is not None
            _move(
                conversation,
                Status.ACTIVE if held else Status.AI,
                reason="The customer replied",
            )
        conversation.last_message_at = message.created_at
        conversation.sentiment = conversation_sentiment(conversation)
        conversation.sentiment_level = assessment.level
        conversation.frustration = assessment.frustration
        conversation.save(
            update_fields=[
                *STATUS_FIELDS,
                "last_message_at",
                "sentiment",
                "sentiment_level",
                "frustration",
                "reopened_count",
                "updated_at",
            ]
        )
        _broadcast_message("message.created", message)
        if reopened:
            _broadcast_message("message.created", notice)
        _broadcast_conversation("conversation.updated", conversation, to_customer=moved)
    return message, True


def _sent_message(conversation: Conversation, client_message_id: str) -> Message | None:
    return conversation.messages.filter(client_message_id=client_message_id).first()


def message_start_bot(*, conversation: Conversation, reply_to: Message) -> Message:
    """Save the bot's answer to `reply_to` as pending (text ""), before a token is generated.

    Locks the conversation row and checks, under the lock, that the bot may still answer: never
    after a person took over. One answer per customer message: raises ConversationStateError
    if `reply_to` already has one being written or sent.
    """
    if reply_to.conversation_id != conversation.pk:
        raise ValueError("The message replied to is in another conversation.")
    with transaction.atomic():
        _lock(conversation)
        if not conversation.bot_may_answer:
            status = conversation.get_status_display()
            raise ConversationStateError(
                f"The bot does not answer: the conversation is “{status}”."
            )
        answered = reply_to.replies.filter(sender=Message.Sender.AI).exclude(
            state=Message.State.FAILED
        )
        if answered.exists():
            raise ConversationStateError("This message already has an answer from the bot.")
        message = Message.objects.create(
            conversation=conversation,
            sender=Message.Sender.AI,
            state=Message.State.PENDING,
            reply_to=reply_to,
        )
        _broadcast_message("message.created", message)
    return message


def message_stream(*, message: Message, text: str) -> None:
    """Save the answer written so far, so a crash leaves it for a retry. No event: the tokens
    themselves are relayed to the widget by the runner.

    Only a pending message is written to: one the stale sweep already failed stays failed.
    """
    message.text = text
    Message.objects.filter(pk=message.pk, state=Message.State.PENDING).update(
        text=text, updated_at=timezone.now()
    )


def message_complete(
    *,
    message: Message,
    text: str,
    outcome: str,
    confidence: float | None = None,
    citations: list | None = None,
    extras: dict | None = None,
    trace: dict | None = None,
    requires_followup: bool = False,
    handoff_follows: bool = False,
) -> Message:
    """Finish the bot's pending answer and send it.

    A sent answer that is not a handoff (`outcome` handoff, or `handoff_follows`: the caller
    hands off next) leaves the conversation awaiting the customer, unless the customer already
    wrote again (that message's turn is next, so the bot keeps it).

    Locks the conversation row, then the message. If a person took over while the answer was
    being written, the answer is not sent: the message fails with its text withdrawn, and its
    trace keeps the unsent text and why. A message no longer pending (failed by the stale
    sweep, so a retry may be under way) is returned unchanged: one answer per turn.
    """
    if outcome not in Message.Outcome.values:
        raise ValueError(f"Unknown outcome {outcome!r}.")
    with transaction.atomic():
        conversation = message.conversation
        _lock(conversation)
        message.refresh_from_db(from_queryset=Message.objects.select_for_update())
        if message.state != Message.State.PENDING:
            log.info("message %s is %s, not completing it", message.pk, message.state)
            return message
        message.trace = {**message.trace, **(trace or {})}
        if not conversation.bot_may_answer:
            message.state = Message.State.FAILED
            message.trace["error"] = (
                "Not sent: the conversation became "
                f"“{conversation.get_status_display()}” before the answer was complete."
            )
            message.trace["unsent_text"] = text
            # Withdrawn, streamed part included: a transcript reloaded later shows the person,
            # not half a bot answer next to them.
            message.text = ""
            message.save(update_fields=["text", "state", "trace", "updated_at"])
        else:
            message.text = text
            message.state = Message.State.COMPLETE
            message.outcome = outcome
            message.confidence = confidence
            message.citations = citations or []
            message.extras = extras or {}
            message.requires_followup = requires_followup
            message.save(update_fields=[*ANSWER_FIELDS, "updated_at"])
            conversation.last_message_at = message.updated_at
            awaits = not handoff_follows and outcome != Message.Outcome.HANDOFF
            newer = conversation.messages.filter(
                sender=Message.Sender.USER, pk__gt=message.reply_to_id or 0
            )
            awaits = awaits and not newer.exists()
            if awaits:
                _move(conversation, Status.AWAITING, reason="The bot answered")
            conversation.save(update_fields=[*STATUS_FIELDS, "last_message_at", "updated_at"])
            if awaits:
                _broadcast_conversation("conversation.updated", conversation)
        _broadcast_message("message.updated", message)
    return message


def message_fail(*, message: Message, error: str) -> Message:
    """Give up on the bot's pending answer; the error goes to the trace, not to the customer."""
    with transaction.atomic():
        message.refresh_from_db(from_queryset=Message.objects.select_for_update())
        if message.state != Message.State.PENDING:
            return message
        message.state = Message.State.FAILED
        message.trace = {**message.trace, "error": error}
        message.save(update_fields=["state", "trace", "updated_at"])
        _broadcast_message("message.updated", message)
    return message


def messages_fail_stale() -> int:
    """Fail bot answers with no heartbeat for CHAT_PENDING_STALE_SECONDS (a crash or a restart
    cut them off: chat.recovery), marked `cut_off` in the trace; the runner then
    retries or hands off. Returns how many.

    Rows another sweep holds are skipped, so concurrent sweeps never fail a message twice.
    """
    seconds = settings.CHAT_PENDING_STALE_SECONDS
    cutoff = timezone.now() - timedelta(seconds=seconds)
    with transaction.atomic():
        stale = list(
            Message.objects.select_for_update(skip_locked=True).filter(
                sender=Message.Sender.AI,
                state=Message.State.PENDING,
                created_at__lt=cutoff,
                updated_at__lt=cutoff,  # the heartbeat: an answer being written is not stale
            )
        )
        for message in stale:
            message.state = Message.State.FAILED
            message.trace = {
                **message.trace,
                "error": f"No heartbeat for {seconds} s: the answer was cut off.",
                "cut_off": True,
            }
            message.save(update_fields=["state", "trace", "updated_at"])
            _broadcast_message("message.updated", message)
    return len(stale)


def message_add_agent(*, conversation: Conversation, agent: User, text: str) -> Message:
    """An agent's message. Precondition: the caller checked that `agent` is a member of the
    conversation's organization (conversations.selectors.conversation_get_for_member).

    Writing takes the conversation: one with the bot, in the queue or resolved becomes active
    and assigned to the agent (through the queue, as a handoff), so the bot falls silent. Then
    the reply leaves it awaiting the customer, still the agent's. Locks the conversation row.
    """
    text = _clean_text(text)
    with transaction.atomic():
        _lock(conversation)
        if conversation.status == Status.CLOSED:
            raise MessageRejected("This conversation is closed.")
        if not conversation.with_agent:
            if conversation.status != Status.WAITING:
                _move(conversation, Status.WAITING, actor=agent, reason="An agent took over")
                conversation.handoff_reason = conversation.handoff_reason or (
                    f"{agent.display_name} joined the conversation"
                )
            _move(conversation, Status.ACTIVE, agent=agent)
        if conversation.status == Status.ACTIVE:
            _move(conversation, Status.AWAITING, actor=agent, reason="The agent replied")
        message = Message.objects.create(
            conversation=conversation, sender=Message.Sender.AGENT, agent=agent, text=text
        )
        conversation.last_message_at = message.created_at
        conversation.save(update_fields=[*STATUS_FIELDS, "last_message_at", "updated_at"])
        _broadcast_message("message.created", message)
        _broadcast_conversation("conversation.updated", conversation)
    return message


def message_add_system(*, conversation: Conversation, text: str, internal: bool = False) -> Message:
    """A notice in the conversation from Handoff itself ("Connecting you with a person…");
    `internal` ones are for the console only, never the customer ("priority raised")."""
    text = text.strip()
    if not text:
        raise ValueError("A system message needs text.")
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation, sender=Message.Sender.SYSTEM, text=text, internal=internal
        )
        _broadcast_message("message.created", message)
    return message


def message_feedback(*, message: Message, value: int) -> Message:
    """The customer's thumbs up (1) or down (-1) on one of the bot's answers."""
    if isinstance(value, bool) or value not in (1, -1):
        raise ValueError("Feedback is 1 (helpful) or -1 (not helpful).")
    if message.sender != Message.Sender.AI or message.state != Message.State.COMPLETE:
        raise ValueError("Only the bot's answers take feedback.")
    with transaction.atomic():
        message.feedback = value
        message.save(update_fields=["feedback", "updated_at"])
        _broadcast_message("message.updated", message)
    return message


def _clean_text(text: str) -> str:
    if not isinstance(text, str):
        raise MessageRejected("A message must be text.")
    # PostgreSQL text cannot hold NUL; nothing a person types contains one.
    text = text.replace("\x00", "").strip()
    if not text:
        raise MessageRejected("The message is empty.")
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len(text) > limit:
        raise MessageRejected(
            f"Your message is {len(text)} characters; the limit is {limit}. "
            "Please shorten it or send it in parts."
        )
    return text
