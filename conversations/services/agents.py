"""What agents do in the console: claim, take over, transfer, reply, note, resolve, return to
the bot, mark as seen.

Preconditions: the caller found the conversation through a member selector
(conversations.selectors.conversation_get_for_member); the services check again that the agent
(and a transfer's new agent) is a member of the conversation's organization, since capacity is
per membership. Locks: the conversation row first, then the membership rows involved, always in
that order, so two claims or transfers never deadlock. Every refusal is a
ConversationStateError (a ValueError) with a sentence fit to show the agent.

escalation.services is imported inside the functions that use it: it imports these services
itself (escalation_open calls conversation_handoff), so a module-level import would be
circular whichever side is imported first.
"""

from __future__ import annotations

from django.db import transaction

from bots.models import Membership, User
from conversations.models import Conversation, Message
from conversations.services.common import (
    STATUS_FIELDS,
    ConversationStateError,
    Status,
    _broadcast_conversation,
    _broadcast_message,
    _lock,
    _move,
)
from conversations.services.messages import _clean_text, message_add_agent

BACK_TO_BOT_MESSAGE = "You're back with the assistant."


def _membership_locked(*, conversation: Conversation, user: User) -> Membership:
    membership = (
        Membership.objects.select_for_update()
        .filter(user=user, organization_id=conversation.bot.organization_id)
        .first()
    )
    if membership is None:
        raise ConversationStateError(f"{user.display_name} is not a member of this organization.")
    return membership


def _check_capacity(*, conversation: Conversation, membership: Membership, you: bool) -> None:
    """Refuses a conversation past the member's capacity of active ones. Call with the
    membership row locked: two claims by one agent are then counted one after the other."""
    active = (
        Conversation.objects.filter(
            bot__organization_id=membership.organization_id,
            status=Status.ACTIVE,
            assigned_agent_id=membership.user_id,
        )
        .exclude(pk=conversation.pk)
        .count()
    )
    if active >= membership.capacity:
        who = "You have" if you else f"{membership.user.display_name} has"
        raise ConversationStateError(
            f"{who} {active} active conversations, the limit of {membership.capacity}: "
            "resolve or transfer one first."
        )


def _system(conversation: Conversation, text: str, *, internal: bool = False, agent=None):
    message = Message.objects.create(
        conversation=conversation,
        sender=Message.Sender.AGENT if internal else Message.Sender.SYSTEM,
        agent=agent,
        text=text,
        internal=internal,
    )
    _broadcast_message("message.created", message)
    return message


def _take(conversation: Conversation, *, agent: User, reason: str) -> None:
    """Waiting → active for `agent`, on a locked conversation, with capacity checked and the
    customer told who joined."""
    membership = _membership_locked(conversation=conversation, user=agent)
    _check_capacity(conversation=conversation, membership=membership, you=True)
    _move(conversation, Status.ACTIVE, agent=agent, actor=agent, reason=reason)
    conversation.save(update_fields=[*STATUS_FIELDS, "updated_at"])
    _system(conversation, f"{agent.display_name} joined the chat")
    _broadcast_conversation("conversation.updated", conversation)


def conversation_claim(*, conversation: Conversation, agent: User) -> Conversation:
    """Take a waiting conversation. Collision-safe: the row lock orders two agents claiming
    at once; the second finds it active and is told who has it. Claiming one's own active
    conversation again (a double click) changes nothing. Refused past the agent's capacity.
    Side effects: "<agent> joined the chat" to the customer; the queue is re-pushed."""
    with transaction.atomic():
        _lock(conversation)
        if conversation.status == Status.ACTIVE:
            if conversation.assigned_agent_id == agent.pk:
                return conversation
            holder = conversation.assigned_agent
            name = holder.display_name if holder else "Another agent"
            raise ConversationStateError(f"{name} already took this conversation.")
        if conversation.status == Status.AI:
            raise ConversationStateError(
                "The bot is handling this conversation: take it over instead."
            )
        if conversation.status != Status.WAITING:
            raise ConversationStateError(
                f"This conversation is “{conversation.get_status_display()}”: "
                "there is nothing to claim."
            )
        _take(conversation, agent=agent, reason=f"Claimed by {agent.display_name}")
    return conversation


def conversation_take_over(*, conversation: Conversation, agent: User) -> Conversation:
    """Take a conversation the bot is handling: it is escalated (an EscalationLog with trigger
    agent_takeover, manual) and claimed in one transaction. The bot falls silent at once: its
    answer being written is withdrawn by message_complete, which re-reads the status under the
    same row lock. A conversation already with people is claimed as usual."""
    from escalation.services import escalation_open

    with transaction.atomic():
        _lock(conversation)
        if conversation.status == Status.AI:
            escalation_open(
                conversation=conversation,
                trigger="agent_takeover",
                reason=f"{agent.display_name} took over from the bot",
                manual=True,
                actor=agent,
            )
        return conversation_claim(conversation=conversation, agent=agent)


def conversation_transfer(
    *,
    conversation: Conversation,
    agent: User,
    to_queue: str | None = None,
    to_agent: User | None = None,
) -> Conversation:
    """Hand a waiting or active conversation on: to a queue (it waits there again, unassigned)
    or to a colleague of the same organization with room under their capacity (it becomes
    theirs). `agent` is who transfers; colleagues read who did in an internal note.
    Locks the conversation row, then the new agent's membership."""
    if (to_queue is None) == (to_agent is None):
        raise ConversationStateError("Transfer to a queue or to an agent.")
    if to_queue is not None and to_queue not in Conversation.Queue.values:
        raise ConversationStateError(f"There is no queue {to_queue!r}.")
    with transaction.atomic():
        _lock(conversation)
        if conversation.status not in (Status.WAITING, Status.ACTIVE):
            raise ConversationStateError(
                f"This conversation is “{conversation.get_status_display()}”: "
                "only conversations with people can be transferred."
            )
        if to_queue is not None:
            label = Conversation.Queue(to_queue).label
            if conversation.status == Status.WAITING and conversation.queue == to_queue:
                raise ConversationStateError(f"It is already waiting in {label}.")
            reason = f"{agent.display_name} transferred it to {label}"
            if conversation.status == Status.ACTIVE:
                _move(conversation, Status.WAITING, actor=agent, reason=reason)
            conversation.queue = to_queue
            conversation.save(update_fields=[*STATUS_FIELDS, "queue", "updated_at"])
            _system(conversation, f"{reason}.", internal=True, agent=agent)
            _broadcast_conversation("conversation.updated", conversation)
            return conversation
        if conversation.assigned_agent_id == to_agent.pk:
            raise ConversationStateError(f"{to_agent.display_name} already has it.")
        membership = _membership_locked(conversation=conversation, user=to_agent)
        _check_capacity(conversation=conversation, membership=membership, you=to_agent == agent)
        reason = f"{agent.display_name} transferred it to {to_agent.display_name}"
        if conversation.status == Status.WAITING:
            _move(conversation, Status.ACTIVE, agent=to_agent, actor=agent, reason=reason)
        else:
            # Active stays active with someone else: not a status change, still audited.
            conversation.transitions.create(
                from_status=Status.ACTIVE, to_status=Status.ACTIVE, actor=agent, reason=reason
            )
            conversation.assigned_agent = to_agent
        conversation.save(update_fields=[*STATUS_FIELDS, "updated_at"])
        _system(conversation, f"{reason}.", internal=True, agent=agent)
        _system(conversation, f"{to_agent.display_name} joined the chat")
        _broadcast_conversation("conversation.updated", conversation)
    return conversation


def conversation_reply(*, conversation: Conversation, agent: User, text: str) -> Message:
    """The console's reply: only by the agent who has the conversation (claim or take over
    first), and it counts as the escalation's first response; a customer who left an e-mail
    address for the answer also gets it by e-mail. Locks the conversation row."""
    from escalation.notifications import notification_customer_reply
    from escalation.services import escalation_log_responded

    with transaction.atomic():
        _lock(conversation)
        if conversation.status != Status.ACTIVE or conversation.assigned_agent_id != agent.pk:
            holder = conversation.assigned_agent
            if conversation.status == Status.ACTIVE and holder is not None:
                raise ConversationStateError(
                    f"{holder.display_name} has this conversation: ask them to transfer it."
                )
            raise ConversationStateError("Claim or take over the conversation to reply.")
        message = message_add_agent(conversation=conversation, agent=agent, text=text)
        escalation_log_responded(conversation=conversation)
        conversation_mark_seen(conversation=conversation, message_id=message.pk)
        # Out of hours the customer was promised an answer by e-mail, too.
        notification_customer_reply(message=message)
    return message


def message_add_note(*, conversation: Conversation, agent: User, text: str) -> Message:
    """An internal note for colleagues: staff only (staff.conv.<id> and the console), never
    on the customer's channels, never read by the bot. Any status, closed included."""
    text = _clean_text(text)
    with transaction.atomic():
        return _system(conversation, text, internal=True, agent=agent)


def conversation_resolve(*, conversation: Conversation, agent: User) -> Conversation:
    """Waiting or active → resolved; the open escalation ends. The customer is asked to rate.
    Locks the conversation row."""
    from escalation.services import escalation_log_resolved

    with transaction.atomic():
        _lock(conversation)
        if conversation.status not in (Status.WAITING, Status.ACTIVE):
            raise ConversationStateError(
                f"This conversation is “{conversation.get_status_display()}”: "
                "only conversations with people can be resolved here."
            )
        _move(
            conversation, Status.RESOLVED, actor=agent, reason=f"Resolved by {agent.display_name}"
        )
        conversation.save(update_fields=[*STATUS_FIELDS, "updated_at"])
        escalation_log_resolved(conversation=conversation)
        _broadcast_conversation("conversation.updated", conversation)
    return conversation


def conversation_return_to_bot(*, conversation: Conversation, agent: User) -> Conversation:
    """Give the conversation back to the bot, which answers the customer's next message. The
    customer is told; the open escalation ends. Locks the conversation row."""
    from escalation.services import escalation_log_resolved

    with transaction.atomic():
        _lock(conversation)
        if conversation.status not in (Status.WAITING, Status.ACTIVE, Status.RESOLVED):
            raise ConversationStateError(
                f"This conversation is “{conversation.get_status_display()}”: "
                "it cannot go back to the bot."
            )
        reason = f"{agent.display_name} returned it to the bot"
        _move(conversation, Status.AI, actor=agent, reason=reason)
        conversation.response_due_at = None
        conversation.save(update_fields=[*STATUS_FIELDS, "response_due_at", "updated_at"])
        escalation_log_resolved(conversation=conversation)
        _system(conversation, BACK_TO_BOT_MESSAGE)
        _broadcast_conversation("conversation.updated", conversation)
    return conversation


def conversation_mark_seen(*, conversation: Conversation, message_id: int | None = None) -> None:
    """Agents have read the conversation up to `message_id` (default: its latest message):
    the queue's unread badge counts customer messages after it. Never moves the mark back."""
    with transaction.atomic():
        if message_id is None:
            message_id = (
                conversation.messages.order_by("-id").values_list("id", flat=True).first() or 0
            )
        updated = Conversation.objects.filter(
            pk=conversation.pk, agent_seen_message_id__lt=message_id
        ).update(agent_seen_message_id=message_id)
        if updated:
            conversation.agent_seen_message_id = message_id
            _broadcast_conversation("conversation.updated", conversation, to_customer=False)
