"""Shared pieces of the conversation services: errors, the row lock, the state machine and
the events. The services themselves are in customers.py, lifecycle.py and messages.py; import
them from `conversations.services`. escalation.services (the agents' actions) moves
conversations with these pieces too: `_lock`, `_move` and the `_broadcast_*` events."""

from __future__ import annotations

from django.utils import timezone

from bots.models import User
from config import realtime
from conversations.events import conversation_changed
from conversations.models import Conversation, Message, Transition
from conversations.payloads import conversation_payload, message_payload

Status = Conversation.Status

HANDOFF_MESSAGE = "Connecting you with a person…"

OPEN_STATUSES = (Status.AI, Status.WAITING, Status.ACTIVE, Status.AWAITING)
TRANSITIONS: dict[str, frozenset[str]] = {
    # → awaiting_customer: the bot answered (message_complete).
    Status.AI: frozenset({Status.WAITING, Status.AWAITING, Status.RESOLVED, Status.CLOSED}),
    Status.WAITING: frozenset({Status.ACTIVE, Status.AI, Status.RESOLVED, Status.CLOSED}),
    # → ai: the agent gives the conversation back to the bot (the console's "return to bot");
    # → awaiting_customer: the agent replied (message_add_agent).
    Status.ACTIVE: frozenset(
        {Status.AI, Status.AWAITING, Status.RESOLVED, Status.WAITING, Status.CLOSED}
    ),
    # The customer's message gives it back to whoever holds it (ai for the bot, active for the
    # agent); a handoff or a transfer to a queue sends it to the queue; the customer's "Yes",
    # an agent's resolve or the inactivity sweep end it.
    Status.AWAITING: frozenset(
        {Status.AI, Status.ACTIVE, Status.WAITING, Status.RESOLVED, Status.CLOSED}
    ),
    Status.RESOLVED: frozenset({Status.AI, Status.WAITING, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}
# Everything _move may change, for update_fields.
STATUS_FIELDS = [
    "status",
    "assigned_agent",
    "handoff_at",
    "handoff_reason",
    "resolved_at",
    "resolution",
]
# What message_complete writes.
ANSWER_FIELDS = "text state outcome confidence citations extras requires_followup trace".split()


class CustomerIdentityError(ValueError):
    """The widget or API sent an identity we cannot accept (bad visitor id, bad signature)."""


class MessageRejected(ValueError):
    """A message that is not stored: empty, too long, or for a closed conversation."""


class ConversationStateError(ValueError):
    """A move the conversation's state does not allow (the bot after a handoff, closed → ai)."""


def _lock(conversation: Conversation) -> None:
    """Re-read the conversation under a row lock held to the end of the transaction, in place,
    so the caller's instance shows the state the write was decided on."""
    conversation.refresh_from_db(from_queryset=Conversation.objects.select_for_update())


def _move(
    conversation: Conversation,
    status: str,
    *,
    agent: User | None = None,
    actor: User | None = None,
    reason: str = "",
    resolution: str = "",
) -> None:
    """One legal step of the state machine on a locked conversation, not yet saved; the step
    itself is recorded at once as a Transition (who: `actor`, else the `agent` taking it).

    `resolution` (Conversation.Resolution) is who resolved it, for a move to resolved or
    closed; a closed conversation keeps the resolution it had, and any open status clears it.
    Awaiting the customer keeps `assigned_agent`: who has the conversation while the customer
    writes (None: the bot).

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
    elif status in OPEN_STATUSES:
        conversation.resolved_at = None
    if status in OPEN_STATUSES:
        conversation.resolution = ""
    elif resolution:
        if resolution not in Conversation.Resolution.values:
            raise ValueError(f"Unknown resolution {resolution!r}.")
        conversation.resolution = resolution
    # Read (and cleared) by _broadcast_conversation, which tells conversation_changed's
    # listeners: a move changes the console's queue even when it ends with the bot. Not the
    # bot's own steps (answering ↔ awaiting the customer, no agent): they are most moves, and
    # the queue never shows them.
    bot_steps = (Status.AI, Status.AWAITING)
    bot_step = current in bot_steps and status in bot_steps
    if not (bot_step and conversation.assigned_agent_id is None):
        conversation._moved = True
    conversation.status = status
    Transition.objects.create(
        conversation=conversation,
        from_status=current,
        to_status=status,
        actor=actor or agent,
        reason=reason[:200],
    )


# --- Events -----------------------------------------------------------------------------------
def _broadcast_message(event: str, message: Message) -> None:
    """To the agents following the conversation and, unless it is an internal note, to the
    customer. The payload is built after commit, from the instance as committed."""
    realtime.broadcast_on_commit(
        realtime.message_groups(conversation_id=message.conversation_id, internal=message.internal),
        event,
        lambda: {"message": message_payload(message)},
    )


def _broadcast_conversation(
    event: str, conversation: Conversation, *, to_customer: bool = True
) -> None:
    """The organization's members hear of every change; the customer's widget (`to_customer`)
    of those it shows: status and who is helping. Floors above hear of it through
    `conversation_changed` (the console's queue), with whether it moved."""
    moved = conversation.__dict__.pop("_moved", False)
    conversation_changed.send(sender=Conversation, conversation=conversation, moved=moved)
    realtime.broadcast_on_commit(
        realtime.organization_group(conversation.bot.organization_id),
        event,
        lambda: {"conversation": conversation_payload(conversation)},
    )
    if to_customer:
        realtime.broadcast_on_commit(
            realtime.conversation_group(conversation.pk),
            event,
            lambda: {"conversation": conversation_payload(conversation, for_customer=True)},
        )
