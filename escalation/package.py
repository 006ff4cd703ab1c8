"""The handoff package: what the agent reads before their first word to the customer.

Built once, when the escalation opens, and stored on the EscalationLog as a snapshot: a
three-sentence summary, the customer's sentiment message by message, what the bot retrieved
and drafted, and a suggested first action. Deterministic, from the stored messages and their
traces: no model, so it is instant and says only what happened.
"""

from __future__ import annotations

from config.links import safe_http_url
from conversations.models import Conversation, Message
from escalation.models import Trigger
from knowledge.models import Chunk

CLIP = 160
TRAJECTORY_MESSAGES = 30
RETRIEVED = 5

ACTIONS = {
    "legal": "Do not admit fault or promise anything: acknowledge the concern, collect the "
    "details, and bring in whoever handles legal matters.",
    "security": "Secure the account first: confirm the customer's identity, reset their "
    "credentials and review recent activity with them.",
    "billing_dispute": "Open the customer's payment history, find the charge they dispute, and "
    "explain it or refund it.",
    "cancellation": "Ask what made them want to cancel and whether it can be fixed; if they "
    "still want to, cancel it for them and confirm in writing.",
    "complaint": "Apologise for the specific thing that went wrong and say what you will do "
    "about it.",
    "out_of_scope": "The bot's knowledge does not cover this question: answer it yourself, and "
    "if other customers may ask it too, add the answer to the knowledge.",
    Trigger.HUMAN_REQUEST: "Introduce yourself and ask what you can help with; the customer "
    "asked for a person, so do not send them back to the bot.",
    Trigger.KEYWORDS: "Read the message that matched the keyword rule and answer it directly.",
    Trigger.SENTIMENT: "Acknowledge how the customer feels before anything else, then solve "
    "their issue step by step.",
    Trigger.FRUSTRATION: "Acknowledge the frustration and that they had to ask more than once, "
    "then take ownership of the issue until it is solved.",
    Trigger.LOW_CONFIDENCE: "The bot was unsure: check its draft against what you know before "
    "answering, and add what was missing to the knowledge.",
    Trigger.UNRESOLVED: "The bot went round in circles: read the customer's questions and "
    "solve the issue directly rather than re-asking.",
    Trigger.RETURNING: "The customer is back soon after a previous conversation: check whether "
    "that issue was really solved.",
    Trigger.AI_ERROR: "The bot failed to answer: reply to the customer's last message yourself "
    "and apologise for the wait.",
    Trigger.GUARDRAIL: "A guardrail stopped the bot's draft: read it, but do not send it as it is.",
    Trigger.API: "The customer's site escalated this conversation: read the reason and the "
    "last messages before answering.",
    Trigger.ACTION: "The customer asked for something above the bot's policy limit (the action "
    "below): check the request and do it yourself if it is right, or explain why not.",
    Trigger.AGENT_TAKEOVER: "Read the conversation so far and pick up where the bot left off.",
}


def package_build(
    *, conversation: Conversation, trigger: str, reason: str, message: Message | None = None
) -> dict:
    """The package for handing `conversation` off now because of `trigger`."""
    customer_rows = list(
        conversation.messages.filter(sender=Message.Sender.USER)
        .order_by("-id")
        .values("id", "text", "sentiment", "signals", "trace")[:TRAJECTORY_MESSAGES]
    )[::-1]
    bot_message = (
        conversation.messages.filter(sender=Message.Sender.AI)
        .exclude(state=Message.State.PENDING)
        .order_by("-id")
        .first()
    )
    trace = bot_message.trace if bot_message else {}
    category = trace.get("subtype") or trace.get("category") or ""
    signals = {s for row in customer_rows for s in row["signals"] or []}
    handed = action_details(bot_message)
    return {
        # Only when an action was handed over: the console shows the request's details.
        **({"action": handed} if handed else {}),
        "summary": _summary(conversation, customer_rows, bot_message, trigger, reason),
        "trajectory": [
            {
                "id": row["id"],
                "compound": row["sentiment"],
                "level": (row["trace"] or {}).get("escalation", {}).get("level", ""),
            }
            for row in customer_rows
        ],
        "retrieved": retrieved_by(bot_message),
        **_draft(bot_message),
        "category": category,
        "signals": sorted(signals),
        "frustration": conversation.frustration,
        "message_id": message.pk if message else None,
        "suggested_action": suggested_action(trigger, category, signals),
    }


def suggested_action(trigger: str, category: str = "", signals=()) -> str:
    """The category says more about what to do than the trigger that noticed it."""
    action = ACTIONS.get(category) or ACTIONS.get(trigger) or ACTIONS[Trigger.AGENT_TAKEOVER]
    if "repeated_issue" in signals or "previous_escalation" in signals:
        action += " The customer has raised this before: say so, so they need not repeat it."
    return action


def _summary(conversation, customer_rows, bot_message, trigger, reason) -> str:
    who = str(conversation.customer) if conversation.customer.name else "The customer"
    if not customer_rows:
        wants = f"{who} has not written yet."
    elif len(customer_rows) == 1:
        wants = f"{who} asked: “{_clip(customer_rows[0]['text'])}”."
    else:
        wants = (
            f"{who} wrote {len(customer_rows)} messages, first “{_clip(customer_rows[0]['text'])}” "
            f"and last “{_clip(customer_rows[-1]['text'])}”."
        )
    if bot_message is None:
        did = "The bot had not answered yet."
    elif bot_message.state == Message.State.FAILED:
        did = (
            "The bot's answer was withdrawn before it was sent."
            if bot_message.trace.get("unsent_text")
            else "The bot failed to answer."
        )
    else:
        sources = len(bot_message.citations or [])
        confidence = (
            f", confidence {bot_message.confidence:.2f}"
            if bot_message.confidence is not None
            else ""
        )
        did = (
            f"The bot's last reply: {bot_message.get_outcome_display().lower()} "
            f"({sources} source{'s' if sources != 1 else ''}{confidence})."
        )
    why = f"Handed off: {reason.strip().rstrip('.')}."
    return " ".join([wants, did, why])


def retrieved_by(bot_message: Message | None) -> list[dict]:
    """What the bot's answer was built from, best first, one line per document (an article's
    passages and an intent's patterns are one source to the agent)."""
    if bot_message is None:
        return []
    cited = {c.get("chunk_id"): c for c in bot_message.citations or [] if isinstance(c, dict)}
    # A trace is ours, but an agent must get the package even from a malformed one.
    hits = [h for h in bot_message.trace.get("retrieved") or [] if isinstance(h, dict)]
    hits = hits[: RETRIEVED * 4]  # several passages of one document make one line
    # What the bot read but did not cite has a title too: one query for all of them.
    documents = {
        pk: (title, url)
        for pk, title, url in Chunk.objects.filter(
            pk__in=[h.get("chunk_id") for h in hits if isinstance(h.get("chunk_id"), int)],
            bot_id=bot_message.conversation.bot_id,
        ).values_list("pk", "document__title", "document__url")
    }
    found, seen = [], set()
    for hit in hits:
        key = hit.get("document_id") or ("chunk", hit.get("chunk_id"))
        if key in seen:
            continue
        if len(found) == RETRIEVED:
            break
        seen.add(key)
        source = cited.get(hit.get("chunk_id"), {})
        title, url = documents.get(hit.get("chunk_id"), ("", ""))
        found.append(
            {
                "chunk_id": hit.get("chunk_id"),
                "document_id": hit.get("document_id"),
                "score": hit.get("score"),
                "title": source.get("title") or title,
                "url": safe_http_url(source.get("url") or url),
                "cited": bool(source),
            }
        )
    if not found:
        # Scripted or older traces: the citations alone still say what was used.
        found = [
            {
                **{k: c.get(k) for k in ("chunk_id", "document_id", "title")},
                "url": safe_http_url(c.get("url")),
                "cited": True,
            }
            for c in bot_message.citations or []
            if isinstance(c, dict)
        ]
    return found


def action_details(bot_message: Message | None) -> dict | None:
    """The action the bot handed over (over its policy limit): its name, the customer's
    arguments and why, from the answer's trace (no URL or secret is ever in it)."""
    if bot_message is None:
        return None
    handed = bot_message.trace.get("action_handoff")
    if not isinstance(handed, dict):
        return None
    arguments = handed.get("arguments")
    return {
        "name": str(handed.get("name", "")),
        "arguments": arguments if isinstance(arguments, dict) else {},
        "reason": str(handed.get("reason", "")),
    }


def _draft(bot_message: Message | None) -> dict:
    """The bot's last answer: sent, or withdrawn (a person took over, a guardrail stopped it)."""
    if bot_message is None:
        return {"drafted": "", "drafted_sent": False}
    if bot_message.state == Message.State.COMPLETE:
        return {"drafted": bot_message.text, "drafted_sent": True}
    return {"drafted": bot_message.trace.get("unsent_text", ""), "drafted_sent": False}


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= CLIP else text[: CLIP - 1].rstrip() + "…"
