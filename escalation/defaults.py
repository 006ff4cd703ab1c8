"""The escalation rules every new bot starts with (an admin edits them in Django admin).

Order matters: the first enabled rule that matches at a stage decides (escalation/rules.py).
Stages do not compete (a message-stage rule and an answer-stage rule never match the same
facts), so within each stage the most certain reason to bring in a person comes first.
"""

from __future__ import annotations

# Whole requests, not topics: "your customer service is great" must not hand off. The
# classifier's broader patterns still catch "put me through to customer service" at the answer
# stage (human_request reads them too).
HUMAN_PHRASES = "\n".join(
    [
        "talk to a human",
        "speak to a human",
        "talk to a person",
        "speak to a person",
        "real person",
        "real human",
        "live agent",
        "human agent",
        "speak to someone",
        "talk to someone",
        "an agent please",
    ]
)

DEFAULT_RULES = [
    # The customer said it: believing them is the whole point of a handoff product.
    dict(
        name="Asks for a person",
        trigger="human_request",
        phrases=HUMAN_PHRASES,
        mode="handoff",
        priority="medium",
        queue="tier1",
    ),
    # A wrong word here is a legal liability: a manager, at once, after the bot's holding reply.
    dict(
        name="Legal matter",
        trigger="category",
        categories="legal",
        mode="handoff",
        priority="high",
        queue="manager",
    ),
    # Someone may be in the account right now: tier 2 can lock it, tier 1 cannot.
    dict(
        name="Security concern",
        trigger="category",
        categories="security",
        mode="handoff",
        priority="high",
        queue="tier2",
    ),
    # Money and leaving: the bot's answer may well be enough, so offer rather than force.
    dict(
        name="Billing dispute or cancellation",
        trigger="category",
        categories="billing_dispute, cancellation",
        mode="offer",
        priority="high",
        queue="tier2",
    ),
    # An angry or urgent customer is not helped by another bot answer.
    dict(
        name="Angry or urgent",
        trigger="sentiment",
        level="angry",
        mode="handoff",
        priority="high",
        queue="tier1",
    ),
    # Calm but fed up (the same issue again and again) is as urgent as angry.
    dict(
        name="High frustration",
        trigger="frustration",
        threshold=0.7,
        mode="handoff",
        priority="high",
        queue="tier1",
    ),
    # Back within a day: the last conversation probably did not solve it. Offer.
    dict(
        name="Returning within 24 hours",
        trigger="returning",
        window_hours=24,
        mode="offer",
        priority="medium",
        queue="tier1",
    ),
    # Six messages in and still talking to the bot: offer a way out of the loop.
    dict(
        name="Six messages without resolution",
        trigger="unresolved",
        message_count=6,
        mode="offer",
        priority="medium",
        queue="tier1",
    ),
    # The bot itself doubts its answer: it is sent, with the offer of a person beside it.
    dict(
        name="Low answer confidence",
        trigger="low_confidence",
        threshold=0.35,
        mode="offer",
        priority="medium",
        queue="tier1",
    ),
    # The bot failed: a person answers, and soon, since the customer already waited.
    dict(
        name="The bot failed",
        trigger="ai_error",
        mode="handoff",
        priority="high",
        queue="tier1",
    ),
]
