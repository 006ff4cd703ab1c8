"""Shared pieces of the conversation services: errors, the row lock, the state machine and
the events. The services themselves are in customers.py, lifecycle.py and messages.py; import
them from `conversations.services`."""

from __future__ import annotations

import threading

from django.db import transaction
from django.utils import timezone

from bots.models import User
from config import realtime
from conversations.models import Conversation, Message, Transition
from conversations.payloads import conversation_payload, message_payload

Status = Conversation.Status

HANDOFF_MESSAGE = "Connecting you with a person…"

OPEN_STATUSES = (Status.AI, Status.WAITING, Status.ACTIVE)
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.AI: frozenset({Status.WAITING, Status.RESOLVED, Status.CLOSED}),
    Status.WAITING: frozenset({Status.ACTIVE, Status.AI, Status.RESOLVED, Status.CLOSED}),
    # → ai: the agent gives the conversation back to the bot (the console's "return to bot").
    Status.ACTIVE: frozenset({Status.AI, Status.RESOLVED, Status.WAITING, Status.CLOSED}),
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
) -> None:
    """One legal step of the state machine on a locked conversation, not yet saved; the step
    itself is recorded at once as a Transition (who: `actor`, else the `agent` taking it).

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
    # Read (and cleared) by _broadcast_conversation: a move changes the console's queue even
    # when it ends with the bot (returned to it).
    conversation._console_moved = True
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

    def send() -> None:
        payload = message_payload(message)
        realtime.broadcast(
            realtime.staff_conversation_group(message.conversation_id), event, message=payload
        )
        if not message.internal:
            realtime.broadcast(
                realtime.conversation_group(message.conversation_id), event, message=payload
            )

    transaction.on_commit(send, robust=True)


def _broadcast_conversation(
    event: str, conversation: Conversation, *, to_customer: bool = True
) -> None:
    """The console's queue hears of every change; the customer's widget (`to_customer`) of those
    it shows: status and who is helping.

    The queue's partial is re-rendered only when the change can show in it: the conversation
    is with people (or resolved), or it just moved (back to the bot). A conversation that is
    and stays with the bot (most messages: bots talk a lot) re-renders nothing."""
    organization_id = conversation.bot.organization_id
    if conversation.__dict__.pop("_console_moved", False) or conversation.status != Status.AI:
        _console_queue_refresh(organization_id)

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


def _console_queue_refresh(organization_id: int) -> None:
    """After commit, push the console's queue partial to the organization, rendered from
    committed data, once however many changes the transaction made (a take-over hands off,
    claims and posts in one).

    A transaction's on-commit callbacks run in the thread that commits, one after the other:
    each callback knows how many queue pushes this thread had made when it was registered,
    and one that finds a push made since (by a callback of the same commit, so after its
    change was durable) has nothing left to send."""
    counts = _queue_pushes.__dict__.setdefault("counts", {})
    registered = counts.get(organization_id, 0)

    def send() -> None:
        if counts.get(organization_id, 0) != registered:
            return
        counts[organization_id] = registered + 1
        # Imported here: escalation's console builds on these services.
        from escalation.live import queue_html

        realtime.broadcast(
            realtime.organization_group(organization_id),
            "console.queue",
            html=queue_html(organization_id=organization_id),
        )

    transaction.on_commit(send, robust=True)


_queue_pushes = threading.local()
