"""Writes for escalations: opening one (the handoff and its log), and the times a manager
reads off the log (first agent response, resolved).

Every way a conversation reaches people goes through `escalation_open`: a rule firing, the
classifier, an error, the customer's button, the API, an agent taking over. So every handoff
has an EscalationLog, and the console and analytics read one history.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from bots.models import User
from conversations import services as conversation_services
from conversations.models import Conversation, Message
from escalation import hours
from escalation.defaults import DEFAULT_RULES
from escalation.models import EscalationLog, EscalationRule, Trigger
from escalation.notifications import notifications_for_escalation
from escalation.package import package_build


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

    `priority` and `queue` default to the rule's, else the conversation's current ones. The
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
    """Give `bot` the default rules (escalation/defaults.py), unless it has rules already."""
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
    from escalation import rules

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
