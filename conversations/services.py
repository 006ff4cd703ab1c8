"""Writes for customers, conversations and messages. Each service owns its transaction.

The conversation row is the lock for everything that races in a chat: its status and who may
speak. The bot starts and finishes an answer only while holding it and only while the
conversation is `ai`, so once a person takes over (handoff, an agent's message) no bot text
reaches the customer. Events go out with `transaction.on_commit` (config/realtime.py), built
from the committed rows by conversations/payloads.py.

All errors a customer or agent can cause are ValueErrors with a sentence fit to show them:
a consumer may catch ValueError and send `str(exc)`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from bots.models import Bot, User
from config import realtime
from conversations.models import Conversation, Customer, Message
from conversations.payloads import conversation_payload, message_payload
from conversations.sentiment import conversation_sentiment, sentiment_score

log = logging.getLogger(__name__)

Status = Conversation.Status

VISITOR_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_EXTERNAL_ID = Customer._meta.get_field("external_id").max_length
MAX_CLIENT_MESSAGE_ID = Message._meta.get_field("client_message_id").max_length
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTES_BYTES = 4096
HANDOFF_MESSAGE = "Connecting you with a person…"

OPEN_STATUSES = (Status.AI, Status.WAITING, Status.ACTIVE)
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.AI: frozenset({Status.WAITING, Status.RESOLVED, Status.CLOSED}),
    Status.WAITING: frozenset({Status.ACTIVE, Status.AI, Status.RESOLVED, Status.CLOSED}),
    Status.ACTIVE: frozenset({Status.RESOLVED, Status.WAITING, Status.CLOSED}),
    Status.RESOLVED: frozenset({Status.AI, Status.WAITING, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}
# Everything _move may change, for update_fields.
STATUS_FIELDS = ["status", "assigned_agent", "handoff_at", "handoff_reason", "resolved_at"]
# What message_complete writes.
ANSWER_FIELDS = "text state outcome confidence citations extras requires_followup trace".split()


class CustomerIdentityError(ValueError):
    """The widget or API sent an identity we cannot accept (bad visitor id, bad signature)."""


class MessageRejected(ValueError):
    """A message that is not stored: empty, too long, or for a closed conversation."""


class ConversationStateError(ValueError):
    """A move the conversation's state does not allow (the bot after a handoff, closed → ai)."""


# --- Customers --------------------------------------------------------------------------------
def identity_signature(*, bot: Bot, user_id: str) -> str:
    """What the site's server sends as `user_hash`: hex HMAC-SHA256 of its user id."""
    return hmac.new(bot.secret_key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def customer_identify(
    *,
    bot: Bot,
    visitor_id: str,
    user_id: str = "",
    user_hash: str = "",
    name: str = "",
    email: str = "",
    attributes: dict | None = None,
) -> Customer:
    """The customer behind a widget or API session, created on first sight.

    Without `user_id` the customer is anonymous, one per browser (`visitor_id`). With it, the
    site vouches for who this is by signing the id with the bot's secret key, and the customer
    is one per site user across devices; an unsigned or wrongly signed id is refused, never
    downgraded to anonymous, so a misconfigured site notices. Name, e-mail and attributes are
    what the page says about the customer and are updated (attributes merged) when given.
    """
    if visitor_id and not VISITOR_ID.fullmatch(visitor_id):
        raise CustomerIdentityError(
            "The visitor id must be 8 to 64 characters: letters, digits, '-' or '_'."
        )
    if user_id:
        if len(user_id) > MAX_EXTERNAL_ID:
            raise CustomerIdentityError(f"The user id is longer than {MAX_EXTERNAL_ID} characters.")
        if not user_hash:
            raise CustomerIdentityError(
                "A user id needs its signature (user_hash): the hex HMAC-SHA256 of the id with "
                "the bot's secret key, computed on your server."
            )
        expected = identity_signature(bot=bot, user_id=user_id).encode()
        if not hmac.compare_digest(expected, user_hash.strip().lower().encode()):
            raise CustomerIdentityError(
                "The user id's signature does not match: sign the id with this bot's secret key "
                "(HMAC-SHA256, hex)."
            )
        lookup = {"bot": bot, "external_id": user_id}
    elif visitor_id:
        lookup = {"bot": bot, "external_id": "", "visitor_id": visitor_id}
    else:
        raise CustomerIdentityError("A visitor id or a signed user id is required.")
    name = name.strip()[: Customer._meta.get_field("name").max_length]
    email = email.strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise CustomerIdentityError(f"{email[:100]} is not an e-mail address.") from None

    with transaction.atomic():
        # get_or_create survives the race of two first messages: it inserts in a savepoint and,
        # on the unique constraint's IntegrityError, reads the row the other request created.
        customer, _ = Customer.objects.get_or_create(**lookup, defaults={"visitor_id": visitor_id})
        # Locked so that two sessions merging attributes do not drop each other's keys.
        customer.refresh_from_db(from_queryset=Customer.objects.select_for_update())
        if visitor_id:
            customer.visitor_id = visitor_id  # a verified customer's latest device
        if name:
            customer.name = name
        if email:
            customer.email = email
        if attributes is not None:
            customer.attributes = _attributes_merge(customer.attributes, attributes)
        customer.save(update_fields=["visitor_id", "name", "email", "attributes", "last_seen_at"])
    return customer


def _attributes_merge(current: dict, new: dict) -> dict:
    if not isinstance(new, dict) or not all(isinstance(key, str) for key in new):
        raise CustomerIdentityError("Attributes must be an object of names and values.")
    merged = {**current, **new}
    try:
        size = len(json.dumps(merged, ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError):
        raise CustomerIdentityError(
            "Attribute values must be plain JSON: text, numbers, true/false, null, lists, objects."
        ) from None
    if len(merged) > MAX_ATTRIBUTES:
        raise CustomerIdentityError(
            f"A customer has at most {MAX_ATTRIBUTES} attributes; this would make {len(merged)}."
        )
    if size > MAX_ATTRIBUTES_BYTES:
        raise CustomerIdentityError(
            f"A customer's attributes are at most {MAX_ATTRIBUTES_BYTES} bytes of JSON; this "
            f"would make {size}."
        )
    return merged


# --- Conversations ----------------------------------------------------------------------------
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
    *, bot: Bot, customer: Customer, conversation_id: int | None, channel: str = "widget"
) -> Conversation:
    """The conversation a returning widget continues: the one it names if it is the customer's
    own and not closed, else their latest open one, else a new one. An id of someone else's
    conversation is treated as no id at all (no error that would confirm it exists)."""
    own = Conversation.objects.filter(bot=bot, customer=customer)
    if conversation_id:
        named = own.exclude(status=Status.CLOSED).filter(pk=conversation_id).first()
        if named is not None:
            return named
    latest = own.filter(status__in=OPEN_STATUSES).order_by("-created_at", "-pk").first()
    return latest or conversation_start(bot=bot, customer=customer, channel=channel)


def conversation_set_status(
    *, conversation: Conversation, status: str, agent: User | None = None
) -> Conversation:
    """Move the conversation along the state machine (TRANSITIONS); the same status is a no-op.

    Locks the conversation row. `agent` is who takes it when it becomes active. Raises
    ConversationStateError for a move the machine does not allow.
    """
    if status not in Status.values:
        raise ValueError(f"Unknown status {status!r}.")
    with transaction.atomic():
        _lock(conversation)
        if conversation.status == status:
            return conversation
        _move(conversation, status, agent=agent)
        conversation.save(update_fields=[*STATUS_FIELDS, "updated_at"])
        _broadcast_conversation("conversation.updated", conversation)
    return conversation


def conversation_handoff(
    *, conversation: Conversation, reason: str, priority: str | None = None
) -> Conversation:
    """Hand the conversation to people: it joins the queue (waiting) and the customer is told.

    Idempotent: a conversation already waiting or with an agent is returned unchanged. Locks the
    conversation row; a bot answer still being written is then refused by message_complete.
    """
    if priority is not None and priority not in Conversation.Priority.values:
        raise ValueError(f"Unknown priority {priority!r}.")
    with transaction.atomic():
        _lock(conversation)
        if conversation.status in (Status.WAITING, Status.ACTIVE):
            return conversation
        _move(conversation, Status.WAITING)
        conversation.handoff_reason = reason.strip()[:200]
        conversation.handoff_at = timezone.now()
        if priority:
            conversation.priority = priority
        conversation.save(update_fields=[*STATUS_FIELDS, "priority", "updated_at"])
        message = Message.objects.create(
            conversation=conversation, sender=Message.Sender.SYSTEM, text=HANDOFF_MESSAGE
        )
        _broadcast_message("message.created", message)
        _broadcast_conversation("conversation.updated", conversation)
    return conversation


def conversation_set_priority(*, conversation: Conversation, priority: str) -> Conversation:
    if priority not in Conversation.Priority.values:
        raise ValueError(f"Unknown priority {priority!r}.")
    with transaction.atomic():
        _lock(conversation)
        conversation.priority = priority
        conversation.save(update_fields=["priority", "updated_at"])
        _broadcast_conversation("conversation.updated", conversation, to_customer=False)
    return conversation


def conversation_rate(*, conversation: Conversation, score: int) -> Conversation:
    """The customer's satisfaction score, 1–5; rating again replaces the score."""
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValueError("Rate the conversation from 1 to 5.")
    with transaction.atomic():
        conversation.csat = score
        conversation.save(update_fields=["csat", "updated_at"])
        _broadcast_conversation("conversation.updated", conversation, to_customer=False)
    return conversation


def _lock(conversation: Conversation) -> None:
    """Re-read the conversation under a row lock held to the end of the transaction, in place,
    so the caller's instance shows the state the write was decided on."""
    conversation.refresh_from_db(from_queryset=Conversation.objects.select_for_update())


def _move(conversation: Conversation, status: str, *, agent: User | None = None) -> None:
    """One legal step of the state machine on a locked conversation, not yet saved.

    `assigned_agent` is who has the conversation now: set when it becomes active, cleared when
    it goes back to the queue or to the bot. `handoff_at` and `handoff_reason` describe the
    current handoff and are cleared when the bot gets the conversation back, which is how a
    resolved conversation knows whether to reopen with the bot or with people.
    """
    current = conversation.status
    if status not in TRANSITIONS[current]:
        raise ConversationStateError(
            f"A conversation that is “{Status(current).label}” cannot become "
            f"“{Status(status).label}”."
        )
    now = timezone.now()
    if status == Status.ACTIVE:
        agent = agent or conversation.assigned_agent
        if agent is None:
            raise ConversationStateError("An agent has to take the conversation to make it active.")
        conversation.assigned_agent = agent
    elif status in (Status.AI, Status.WAITING):
        conversation.assigned_agent = None
    if status == Status.AI:
        conversation.handoff_at, conversation.handoff_reason = None, ""
    elif status == Status.WAITING and conversation.handoff_at is None:
        conversation.handoff_at = now
    if status == Status.RESOLVED or (status == Status.CLOSED and not conversation.resolved_at):
        conversation.resolved_at = now
    elif status in (Status.AI, Status.WAITING, Status.ACTIVE):
        conversation.resolved_at = None
    conversation.status = status


# --- Messages ---------------------------------------------------------------------------------
def message_add_user(
    *, conversation: Conversation, text: str, client_message_id: str | None = None
) -> tuple[Message, bool]:
    """Store the customer's message; returns (message, created).

    A resend with the same `client_message_id` (after a dropped socket) returns the stored
    message with created=False and broadcasts nothing. Locks the conversation row. A message to
    a resolved conversation reopens it where it was resolved from: with the bot if the bot had
    it, in the queue (waiting) if it had been handed off, since the customer last needed a
    person. A closed conversation takes no messages.
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
        if conversation.status == Status.CLOSED:
            raise MessageRejected("This conversation is closed. Start a new one to write again.")
        try:
            # The row lock already orders two sends of one message; the savepoint keeps the
            # transaction usable should the unique constraint still catch a duplicate.
            with transaction.atomic():
                message = Message.objects.create(
                    conversation=conversation,
                    sender=Message.Sender.USER,
                    text=text,
                    client_message_id=client_message_id,
                    trace={"sentiment": sentiment_score(text)},
                )
        except IntegrityError:
            sent = _sent_message(conversation, client_message_id) if client_message_id else None
            if sent is None:
                raise
            return sent, False
        reopened = conversation.status == Status.RESOLVED
        if reopened:
            _move(conversation, Status.WAITING if conversation.handoff_at else Status.AI)
        conversation.last_message_at = message.created_at
        conversation.sentiment = conversation_sentiment(conversation)
        conversation.save(
            update_fields=[*STATUS_FIELDS, "last_message_at", "sentiment", "updated_at"]
        )
        _broadcast_message("message.created", message)
        _broadcast_conversation("conversation.updated", conversation, to_customer=reopened)
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
) -> Message:
    """Finish the bot's pending answer and send it.

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
            conversation.save(update_fields=["last_message_at", "updated_at"])
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
    """Fail bot answers that made no progress for CHAT_PENDING_STALE_SECONDS (a crash or a
    restart cut them off); the runner then retries or hands off. Returns how many.

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
                updated_at__lt=cutoff,  # a long answer still streaming is not stale
            )
        )
        for message in stale:
            message.state = Message.State.FAILED
            message.trace = {
                **message.trace,
                "error": f"No progress for {seconds} s: the answer was cut off.",
            }
            message.save(update_fields=["state", "trace", "updated_at"])
            _broadcast_message("message.updated", message)
    return len(stale)


def message_add_agent(*, conversation: Conversation, agent: User, text: str) -> Message:
    """An agent's message. Precondition: the caller checked that `agent` is a member of the
    conversation's organization (conversations.selectors.conversation_get_for_member).

    Writing takes the conversation: one with the bot, in the queue or resolved becomes active
    and assigned to the agent (through the queue, as a handoff), so the bot falls silent. Locks
    the conversation row.
    """
    text = _clean_text(text)
    with transaction.atomic():
        _lock(conversation)
        if conversation.status == Status.CLOSED:
            raise MessageRejected("This conversation is closed.")
        taken = conversation.status != Status.ACTIVE
        if conversation.status in (Status.AI, Status.RESOLVED):
            _move(conversation, Status.WAITING)
            conversation.handoff_reason = conversation.handoff_reason or (
                f"{agent.display_name} joined the conversation"
            )
        if taken:
            _move(conversation, Status.ACTIVE, agent=agent)
        message = Message.objects.create(
            conversation=conversation, sender=Message.Sender.AGENT, agent=agent, text=text
        )
        conversation.last_message_at = message.created_at
        conversation.save(update_fields=[*STATUS_FIELDS, "last_message_at", "updated_at"])
        _broadcast_message("message.created", message)
        _broadcast_conversation("conversation.updated", conversation, to_customer=taken)
    return message


def message_add_system(*, conversation: Conversation, text: str) -> Message:
    """A notice in the conversation from Handoff itself ("Connecting you with a person…")."""
    text = text.strip()
    if not text:
        raise ValueError("A system message needs text.")
    with transaction.atomic():
        message = Message.objects.create(
            conversation=conversation, sender=Message.Sender.SYSTEM, text=text
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


# --- Events -----------------------------------------------------------------------------------
def _broadcast_message(event: str, message: Message) -> None:
    group = realtime.conversation_group(message.conversation_id)
    # The payload is built after commit, from the instance as committed.
    transaction.on_commit(
        lambda: realtime.broadcast(group, event, message=message_payload(message)), robust=True
    )


def _broadcast_conversation(
    event: str, conversation: Conversation, *, to_customer: bool = True
) -> None:
    """The console's queue hears of every change; the customer's widget (`to_customer`) of those
    it shows: status and who is helping."""
    organization_id = conversation.bot.organization_id

    def send() -> None:
        realtime.broadcast(
            realtime.organization_group(organization_id),
            event,
            conversation=conversation_payload(conversation),
        )
        if to_customer:
            realtime.broadcast(
                realtime.conversation_group(conversation.pk),
                event,
                conversation=conversation_payload(conversation, for_customer=True),
            )

    transaction.on_commit(send, robust=True)
