"""Writes for escalations: opening one (the handoff and its log), the times a manager reads
off the log (first agent response, resolved), and what agents do in the console.

Every way a conversation reaches people goes through `escalation_open`: a rule firing, the
classifier, an error, the customer's button, the API, an agent taking over. So every handoff
has an EscalationLog, and the console and analytics read one history.

The agents' actions (claim, take over, transfer, reply, note, resolve, return to the bot, mark
as seen) move conversations with the state machine of conversations.services (`_lock`,
`_move`, the events), the floor below. Preconditions: the caller found the conversation
through a member selector (escalation.selectors.console_conversation_get); the actions check
again that the agent (and a transfer's new agent) is a member of the conversation's
organization, since capacity is per membership. Locks: the conversation row first, then the
membership rows involved, always in that order, so two claims or transfers never deadlock.
Every refusal is a ConversationStateError (a ValueError) with a sentence fit to show the agent.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from bots.models import Membership, User
from conversations import services as conversation_services
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
from escalation import hours, rules
from escalation.defaults import DEFAULT_RULES
from escalation.events import agent_acted
from escalation.models import EscalationLog, EscalationRule, Trigger
from escalation.notifications import notification_customer_reply, notifications_for_escalation
from escalation.package import package_build
from knowledge import services as knowledge_services
from knowledge.models import TeamAnswer


def escalation_open(
    *,
    conversation: Conversation,
    trigger: str,
    reason: str,
    priority: str | None = None,
    queue: str | None = None,
    rule: EscalationRule | None = None,
    message: Message | None = None,
    manual: bool = False,
    actor: User | None = None,
) -> EscalationLog | None:
    """Hand `conversation` to people and log why. Returns the new log, or None when it already
    was with people (waiting or active): one handoff, one log.

    `priority` and `queue` default to the rule's, else the conversation's current ones; a
    request for a person in negative words goes in at high at least (rules.request_priority). The
    log carries the handoff package for the agent (escalation/package.py). Outside the bot's
    business hours the customer's notice says when to expect an answer and asks for an e-mail
    address (extras ask_email, expected_reply_at).
    Locks the conversation row (through conversation_handoff). Raises
    ConversationStateError for a closed conversation.
    """
    if trigger not in Trigger.values:
        raise ValueError(f"Unknown trigger {trigger!r}.")
    priority = priority or (rule.priority if rule else None)
    queue = queue or (rule.queue if rule else None)
    if trigger == Trigger.HUMAN_REQUEST:
        # Asked for in negative words: high, whichever way the request came (a phrase, the
        # classifier, the button after an angry message).
        level = _request_level(conversation=conversation, message=message)
        priority = rules.request_priority(priority or conversation.priority, level)
    # Out of hours the customer is told when to expect an answer and may leave an e-mail
    # address; the conversation waits in the queue all the same.
    notice, extras = conversation_services.HANDOFF_MESSAGE, {}
    if not hours.is_open(conversation.bot):
        notice, expected = hours.reply_expectation(conversation.bot)
        expected_at = expected.isoformat() if expected else None
        extras = {"ask_email": True, "expected_reply_at": expected_at}
    with transaction.atomic():
        handed_off = conversation_services.conversation_handoff(
            conversation=conversation,
            reason=reason,
            priority=priority,
            queue=queue,
            actor=actor,
            notice=notice,
            notice_extras=extras,
        )
        if not handed_off:
            return None
        package = package_build(
            conversation=conversation, trigger=trigger, reason=reason, message=message
        )
        if extras:
            package["expected_reply_at"] = extras["expected_reply_at"]
        log = EscalationLog.objects.create(
            conversation=conversation,
            rule=rule,
            message=message,
            trigger=trigger,
            reason=reason.strip()[:200],
            manual=manual,
            priority=conversation.priority,
            queue=conversation.queue,
            package=package,
        )
        notifications_for_escalation(log=log)  # high and urgent only; sent after commit
    return log


def _request_level(*, conversation: Conversation, message: Message | None) -> str:
    """The level of the customer message behind a request for a person: `message`, else the
    customer's latest (the button carries no text; it is pressed after what they wrote)."""
    if message is None:
        message = conversation.messages.filter(sender=Message.Sender.USER).order_by("-id").first()
    if message is None:
        return ""
    return ((message.trace or {}).get("escalation") or {}).get("level", "")


def escalation_log_responded(*, conversation: Conversation, at=None) -> None:
    """An agent answered the customer: the open escalation's first response, if not set yet.
    Call inside the transaction that stores the agent's message."""
    EscalationLog.objects.filter(
        conversation=conversation, first_response_at__isnull=True, resolved_at__isnull=True
    ).update(first_response_at=at or timezone.now())


def escalation_log_resolved(*, conversation: Conversation, at=None) -> None:
    """The conversation was resolved, closed or given back to the bot: its open escalations
    end. Call inside the transaction that moves it."""
    EscalationLog.objects.filter(conversation=conversation, resolved_at__isnull=True).update(
        resolved_at=at or timezone.now()
    )


def escalation_rules_create_defaults(*, bot) -> list[EscalationRule]:
    """Give `bot` the default rules (escalation/defaults.py), unless it has rules already. Every
    new bot gets them this way, through bots.events.bot_created (escalation/receivers.py)."""
    if EscalationRule.objects.filter(bot=bot).exists():
        return []
    return EscalationRule.objects.bulk_create(
        EscalationRule(bot=bot, position=(i + 1) * 10, **fields)
        for i, fields in enumerate(DEFAULT_RULES)
    )


def escalation_request(
    *,
    conversation: Conversation,
    reason: str,
    trigger: str = Trigger.HUMAN_REQUEST,
    actor: User | None = None,
) -> EscalationLog | None:
    """A person asked for: the customer's button (trigger human_request, whose first rule sets
    the priority and queue) or the site's API (trigger api). Always a handoff, and manual."""
    decision = None
    if trigger == Trigger.HUMAN_REQUEST:
        decision = rules.evaluate(
            bot=conversation.bot, stage="button", facts=rules.Facts(asked_for_person=True)
        )
    return escalation_open(
        conversation=conversation,
        trigger=trigger,
        reason=reason,
        rule=decision.rule if decision else None,
        manual=True,
        actor=actor,
    )


def conversation_answer_rejected(*, conversation: Conversation, message_id: int) -> None:
    """The customer's "No" to "Did that answer your question?": recorded on the answer, then
    what the bot's `not_answered` says: offer a person (the customer decides), or hand off at
    once (trigger not_answered). One transaction; locks the conversation row."""
    handoff = conversation.bot.not_answered == conversation.bot.NotAnswered.HANDOFF
    with transaction.atomic():
        message = conversation_services.message_answer_rejected(
            conversation=conversation, message_id=message_id, offer_person=not handoff
        )
        if handoff:
            escalation_open(
                conversation=conversation,
                trigger=Trigger.NOT_ANSWERED,
                reason="The customer said the bot's answer did not help.",
                message=message.reply_to,
            )


# --- What agents do in the console ----------------------------------------------------------------
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
    # Awaiting the customer after the agent's reply is still the agent's conversation.
    active = (
        Conversation.objects.filter(
            bot__organization_id=membership.organization_id,
            status__in=(Status.ACTIVE, Status.AWAITING),
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
        if conversation.with_agent:
            if conversation.assigned_agent_id == agent.pk:
                return conversation
            holder = conversation.assigned_agent
            name = holder.display_name if holder else "Another agent"
            raise ConversationStateError(f"{name} already took this conversation.")
        if conversation.with_bot:
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
    with transaction.atomic():
        _lock(conversation)
        if conversation.with_bot:
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
        if not (conversation.status == Status.WAITING or conversation.with_agent):
            raise ConversationStateError(
                f"This conversation is “{conversation.get_status_display()}”: "
                "only conversations with people can be transferred."
            )
        if to_queue is not None:
            label = Conversation.Queue(to_queue).label
            if conversation.status == Status.WAITING and conversation.queue == to_queue:
                raise ConversationStateError(f"It is already waiting in {label}.")
            reason = f"{agent.display_name} transferred it to {label}"
            if conversation.with_agent:
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
            # Active (or awaiting the customer) stays so with someone else: not a status
            # change, still audited.
            conversation.transitions.create(
                from_status=conversation.status,
                to_status=conversation.status,
                actor=agent,
                reason=reason,
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
    with transaction.atomic():
        _lock(conversation)
        if not conversation.with_agent or conversation.assigned_agent_id != agent.pk:
            holder = conversation.assigned_agent
            if conversation.with_agent and holder is not None:
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


BOT_MISSED_NOTE_MAX = 2000


def conversation_resolve(
    *, conversation: Conversation, agent: User, bot_missed: bool = False, note: str = ""
) -> Conversation:
    """Waiting, active or awaiting the customer with an agent → resolved by an agent; the open
    escalation ends. The customer is asked to rate. Locks the conversation row.

    With `bot_missed` the agent says the bot should have handled it ("The bot should have
    handled this"), with an optional `note` on what it lacked; such conversations lead the
    knowledge-gaps report. A note without the mark is not kept: it explains the mark."""
    note = note.strip() if bot_missed else ""
    if len(note) > BOT_MISSED_NOTE_MAX:
        raise ValueError(f"Keep the note under {BOT_MISSED_NOTE_MAX} characters.")
    with transaction.atomic():
        _lock(conversation)
        if not (conversation.status == Status.WAITING or conversation.with_agent):
            raise ConversationStateError(
                f"This conversation is “{conversation.get_status_display()}”: "
                "only conversations with people can be resolved here."
            )
        _move(
            conversation,
            Status.RESOLVED,
            actor=agent,
            reason=f"Resolved by {agent.display_name}",
            resolution=Conversation.Resolution.AGENT,
        )
        conversation.bot_missed, conversation.bot_missed_note = bot_missed, note
        conversation.save(
            update_fields=[*STATUS_FIELDS, "bot_missed", "bot_missed_note", "updated_at"]
        )
        escalation_log_resolved(conversation=conversation)
        _broadcast_conversation("conversation.updated", conversation)
    return conversation


def conversation_save_faq(
    *, conversation: Conversation, agent: User, question: str, answer: str
) -> TeamAnswer:
    """Save what an agent answered as an FAQ of the bot's "Answers from the team" source, which
    syncs in the worker like any other (knowledge.services.team_answer_save). Only a resolved or
    closed conversation: its answer is settled. ValidationError (by field) for bad input,
    ConversationStateError for a conversation still open."""
    if conversation.status not in (Status.RESOLVED, Status.CLOSED):
        raise ConversationStateError(
            f"This conversation is “{conversation.get_status_display()}”: resolve it before "
            "saving its answer as an FAQ."
        )
    return knowledge_services.team_answer_save(
        bot=conversation.bot,
        question=question,
        answer=answer,
        conversation_id=conversation.pk,
        user=agent,
    )


def conversation_return_to_bot(*, conversation: Conversation, agent: User) -> Conversation:
    """Give the conversation back to the bot, which answers the customer's next message. The
    customer is told; the open escalation ends. Locks the conversation row."""
    with transaction.atomic():
        _lock(conversation)
        if not (
            conversation.status in (Status.WAITING, Status.RESOLVED) or conversation.with_agent
        ):
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


def conversation_state(conversation: Conversation) -> dict:
    """What an agent's action can change on a conversation, as plain values."""
    return {
        "status": conversation.status,
        "assigned_agent": conversation.assigned_agent_id,
        "queue": conversation.queue,
        "priority": conversation.priority,
        "resolution": conversation.resolution,
        "bot_missed": conversation.bot_missed,
        "bot_missed_note": conversation.bot_missed_note,
    }


def console_act(*, conversation: Conversation, agent: User, action, **kwargs):
    """Run one of the agent's actions above and tell the floors above (the audit log) what it
    changed, in the action's transaction: an action that is refused tells nothing, and one that
    is told of has happened. Locks the conversation row first, as each action does, so `before`
    is what the action found."""
    with transaction.atomic():
        _lock(conversation)
        before = conversation_state(conversation)
        result = action(conversation=conversation, agent=agent, **kwargs)
        agent_acted.send(
            sender=Conversation,
            action=action.__name__,
            conversation=conversation,
            agent=agent,
            before=before,
            result=result,
        )
    return result
