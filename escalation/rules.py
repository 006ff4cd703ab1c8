"""When a person takes over: a bot's escalation rules, tried in `position` order, the first
enabled one that matches deciding.

Rules are tried at three stages of a turn, each with the facts it has:
- "message": the customer's message is stored and scored (conversations/assessment.py), the bot has
  not answered. human_request (phrases), keywords, sentiment, frustration, unresolved,
  returning. A handoff here means the bot does not answer the message.
- "answer": the pipeline's final event is in. low_confidence, category (the classifier's
  category and subtype), and human_request when the classifier read the message as asking for
  a person.
- "error": the bot failed to answer. ai_error.
The customer's "talk to a person" button is the stage "button": only human_request rules,
which then set the priority and queue.

`evaluate` returns the winning Decision; `explain` says, rule by rule, whether it fires and
why (the admin's "Test a message" page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from conversations.assessment import level_at_least
from conversations.models import Conversation, Level, Message
from conversations.pipeline.classify import normalise
from escalation.models import EscalationRule, Mode, Priority, Trigger

STAGES = {
    "message": {
        Trigger.HUMAN_REQUEST,
        Trigger.KEYWORDS,
        Trigger.SENTIMENT,
        Trigger.FRUSTRATION,
        Trigger.UNRESOLVED,
        Trigger.RETURNING,
    },
    "answer": {Trigger.LOW_CONFIDENCE, Trigger.CATEGORY, Trigger.HUMAN_REQUEST},
    "error": {Trigger.AI_ERROR},
    "button": {Trigger.HUMAN_REQUEST},
}
# Triggers every stage of the admin's test page looks at: what a sample message could fire.
ALL_STAGES = ("message", "answer", "error")
# A request for a person in negative words is queued at least this high, whatever the rule
# says: "this is useless, I want to talk to a human" should not wait behind polite requests.
# Negative is the message's level (conversations/assessment.py: its sentiment score, or a sign
# the help so far failed), the levels outcomes also count as dissatisfaction.
UNHAPPY_LEVELS = (Level.FRUSTRATED, Level.ANGRY, Level.URGENT)
UNHAPPY_REQUEST_PRIORITY = Priority.HIGH


@dataclass
class Facts:
    """What a stage knows about the turn. Fields a stage does not know stay None."""

    text: str = ""
    level: str = ""
    frustration: float = 0.0
    # Customer messages in the conversation, this one included.
    customer_messages: int = 0
    # Hours since the customer's previous conversation, on the first message of a new one.
    returning_after_hours: float | None = None
    confidence: float | None = None
    category: str = ""
    subtype: str = ""
    # The classifier read the message as asking for a person, or the customer pressed the button.
    asked_for_person: bool = False
    error: str = ""


@dataclass
class Decision:
    rule: EscalationRule | None
    trigger: str
    mode: str
    priority: str
    queue: str
    reason: str

    @property
    def handoff(self) -> bool:
        return self.mode == Mode.HANDOFF


@dataclass
class Check:
    rule: EscalationRule
    stage: str
    fired: bool
    why: str


def rule_list(bot) -> list[EscalationRule]:
    return list(EscalationRule.objects.filter(bot=bot).order_by("position", "id"))


def evaluate(
    *, bot, stage: str, facts: Facts, rules: list[EscalationRule] | None = None
) -> Decision | None:
    """The first enabled rule of this stage that matches, as a decision; None if none does."""
    if stage not in STAGES:
        raise ValueError(f"Unknown stage {stage!r}.")
    for rule in rules if rules is not None else rule_list(bot):
        if not rule.enabled or rule.trigger not in STAGES[stage]:
            continue
        fired, why = match(rule, stage, facts)
        if fired:
            return Decision(
                rule=rule,
                trigger=rule.trigger,
                mode=rule.mode,
                priority=rule.priority,
                queue=rule.queue,
                reason=f"{rule.name}: {why}"[:200],
            )
    return None


def explain(*, rules: list[EscalationRule], facts: Facts) -> tuple[list[Check], Check | None]:
    """Every rule with whether it fires on `facts` and why, and the one that wins (the first
    that fires, in position order; disabled rules never do)."""
    checks, winner = [], None
    for rule in rules:
        # A trigger of several stages (human_request: phrases, or the classifier) is shown
        # where it fires, else where it is tried first.
        stages = [s for s in ALL_STAGES if rule.trigger in STAGES[s]]
        results = [(stage, *match(rule, stage, facts)) for stage in stages]
        stage, fired, why = next((r for r in results if r[1]), results[0])
        if not rule.enabled:
            fired, why = False, f"Disabled ({why[0].lower() + why[1:]})"
        check = Check(rule=rule, stage=stage, fired=fired, why=why)
        checks.append(check)
        if fired and winner is None:
            winner = check
    return checks, winner


def match(rule: EscalationRule, stage: str, facts: Facts) -> tuple[bool, str]:
    """Whether `rule` fires on `facts` at `stage`, and a sentence saying why (or why not)."""
    trigger = rule.trigger
    if trigger == Trigger.HUMAN_REQUEST:
        if facts.asked_for_person and stage in ("answer", "button"):
            return True, "the customer asked for a person"
        phrase = _phrase_in(rule.phrase_list, facts.text)
        if phrase and stage == "message":
            return True, f"the message says “{phrase}”"
        return False, "No request for a person"
    if trigger == Trigger.KEYWORDS:
        keyword = _phrase_in(rule.phrase_list, facts.text)
        if keyword:
            return True, f"the message contains “{keyword}”"
        return False, "None of the keywords"
    if trigger == Trigger.SENTIMENT:
        if facts.level and level_at_least(facts.level, rule.level):
            return True, f"the customer is {facts.level} (at or above {rule.level})"
        return False, f"Level {facts.level or 'unknown'} is below {rule.level}"
    if trigger == Trigger.FRUSTRATION:
        if rule.threshold is not None and facts.frustration >= rule.threshold:
            return True, f"frustration {facts.frustration:.2f} ≥ {rule.threshold:.2f}"
        return False, f"Frustration {facts.frustration:.2f} is below {rule.threshold}"
    if trigger == Trigger.LOW_CONFIDENCE:
        if facts.confidence is None:
            return False, "The answer has no confidence score"
        if rule.threshold is not None and facts.confidence < rule.threshold:
            return True, f"answer confidence {facts.confidence:.2f} < {rule.threshold:.2f}"
        return False, f"Confidence {facts.confidence:.2f} is not below {rule.threshold}"
    if trigger == Trigger.CATEGORY:
        wanted = set(rule.category_list)
        hit = next((c for c in (facts.subtype, facts.category) if c and c in wanted), "")
        if hit:
            return True, f"the message is classified {hit}"
        seen = "/".join(c for c in (facts.category, facts.subtype) if c) or "nothing"
        return False, f"Classified {seen}, not {', '.join(rule.category_list)}"
    if trigger == Trigger.UNRESOLVED:
        count = rule.message_count or 0
        if count and facts.customer_messages >= count:
            return True, f"{facts.customer_messages} customer messages without resolution"
        return False, f"{facts.customer_messages} customer messages, fewer than {count}"
    if trigger == Trigger.RETURNING:
        hours = facts.returning_after_hours
        if hours is not None and rule.window_hours is not None and hours <= rule.window_hours:
            return True, f"the customer is back after {hours:.1f} h (within {rule.window_hours} h)"
        if hours is None:
            return False, "Not a returning customer's first message"
        return False, f"Back after {hours:.1f} h, outside {rule.window_hours} h"
    if trigger == Trigger.AI_ERROR:
        if facts.error:
            return True, "the bot failed to answer"
        return False, "The bot did not fail"
    return False, f"Trigger {trigger} is not a rule's"


def request_priority(priority: str, level: str) -> str:
    """The priority of a request for a person: `priority` (the rule's, the pipeline's or the
    conversation's), raised to UNHAPPY_REQUEST_PRIORITY when the customer's words are negative
    (`level`), never lowered."""
    order = list(Priority.values)
    if level in UNHAPPY_LEVELS and order.index(priority) < order.index(UNHAPPY_REQUEST_PRIORITY):
        return UNHAPPY_REQUEST_PRIORITY
    return priority


def _phrase_in(phrases: list[str], text: str) -> str:
    norm = f" {_words(text)} "
    return next((p for p in phrases if f" {_words(p)} " in norm and _words(p)), "")


def _words(text: str) -> str:
    # Punctuation is not part of a phrase: "a real person!" contains "real person".
    return " ".join("".join(c if c.isalnum() or c == "'" else " " for c in normalise(text)).split())


# --- Facts from a conversation ---------------------------------------------------------------
def message_facts(message: Message) -> Facts:
    """The message stage's facts: the stored, scored customer message and its conversation."""
    conversation = message.conversation
    scored = (message.trace or {}).get("escalation", {})
    count = conversation.messages.filter(sender=Message.Sender.USER, pk__lte=message.pk).count()
    return Facts(
        text=message.text,
        level=scored.get("level", ""),
        frustration=float(scored.get("frustration", conversation.frustration or 0.0)),
        customer_messages=count,
        returning_after_hours=_returning_after(conversation) if count == 1 else None,
    )


def answer_facts(final: dict, *, text: str = "") -> Facts:
    """The answer stage's facts, from the pipeline's final event."""
    trace = final.get("trace") or {}
    category = trace.get("category") or ""
    return Facts(
        text=text,
        confidence=final.get("confidence"),
        category=category,
        subtype=trace.get("subtype") or "",
        # Only a request the classifier is sure of: a message that merely resembles one gets
        # the pipeline's own offer of a person instead.
        asked_for_person=category == "human" and final.get("outcome") == "handoff",
    )


def _returning_after(conversation: Conversation) -> float | None:
    previous = (
        Conversation.objects.filter(
            customer_id=conversation.customer_id, created_at__lt=conversation.created_at
        )
        .exclude(pk=conversation.pk)
        .exclude(channel=Conversation.Channel.PLAYGROUND)
        .order_by("-created_at")
        .first()
    )
    if previous is None:
        return None
    ended = previous.last_message_at or previous.created_at
    return max(0.0, (conversation.created_at - ended) / timedelta(hours=1))
