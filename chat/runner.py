"""The chat runner: one customer message in, the bot's answer out, for every channel.

The widget's socket and the HTTP API both have `turn_run` answer a saved customer message, in a
worker thread of the one turn scheduler (chat.turns). The answer is saved as `pending` before
the first token, its tokens are relayed live to the conversation's group (and yielded to the
API's event stream), the text so far is saved every half second, and the finished answer is
completed, or failed and handed to people. So a dropped socket or HTTP connection loses
nothing, and a crash leaves a pending row whose heartbeat stops: the recovery sweep
(chat.recovery.turn_recover, every few seconds in the serving process, every minute in the
worker) fails it and answers again.

Rolling summary: the pipeline reads the last WINDOW_TURNS complete messages verbatim. Once a
conversation is longer, the customer's questions that fell out of the window are kept in
`conversation.summary` as one line, "Earlier the customer asked: …; …" (the latest
SUMMARY_QUESTIONS of them, each cut to SUMMARY_QUESTION_CHARS). It is rebuilt from the messages
on every turn, so it is deterministic, needs no model, and never drifts from what was said.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import transaction

from chat import services as chat_services
from config import heartbeat as beats
from config import realtime
from conversations import pipeline, selectors, services
from conversations.models import ActionCall, Conversation, Message
from conversations.pipeline.actions import PendingAction
from conversations.pipeline.classify import OFFER_QUESTION
from escalation import rules
from escalation.models import Mode, Trigger
from escalation.services import escalation_open

log = logging.getLogger(__name__)

WINDOW_TURNS = 10
SUMMARY_QUESTIONS = 10
SUMMARY_QUESTION_CHARS = 150
# Previous conversations of a verified customer the bot is told about, and how much of each.
HISTORY_CONVERSATIONS = 3
HISTORY_QUESTIONS = 3
# The partial answer is saved this often while tokens stream, so a crash keeps most of it.
STREAM_SAVE_SECONDS = 0.5
# A turn is tried at most this many times (the first run and the recovery's retries); then the
# conversation goes to people instead.
MAX_ATTEMPTS = 3

FAILURE_NOTE = "Sorry, something went wrong on our side while answering."


def turn_run(*, message: Message, attempt: int = 1) -> Iterator[dict]:
    """Answer the customer's `message`, yielding the API's stream events as it goes.

    Events: `token` {text}, then `cited_sources` {citations} when the answer cites anything,
    `escalation_proposed` {reason} when it offers a person, `escalation_confirmed` {reason} when
    the conversation was handed off, and last `done` {conversation_id, message_id, outcome,
    text}. Yields nothing when the bot may not answer (a person is involved, or the message
    already has an answer). Never raises: a failure fails the answer and hands the
    conversation to people, with a note to the customer.
    """
    conversation = message.conversation
    conversation.refresh_from_db()
    if not conversation.bot_may_answer:
        return
    reply = None
    try:
        # The escalation rules read the stored, scored message before the bot answers it: a
        # handoff here means people answer it, not the bot; an offer rides on the bot's reply.
        # Read once: the message and the answer stages of this turn try the same rules.
        bot_rules = rules.rule_list(conversation.bot)
        decision = rules.evaluate(
            bot=conversation.bot,
            stage="message",
            facts=rules.message_facts(message),
            rules=bot_rules,
        )
        if decision is not None and decision.handoff:
            yield from _escalate(conversation=conversation, decision=decision, message=message)
            yield _done(conversation, None)
            return
        turn = _turn_build(conversation=conversation, message=message)
        try:
            reply = services.message_start_bot(conversation=conversation, reply_to=message)
        except services.ConversationStateError:
            # A person took over, or another run answers this message: the bot stays silent.
            return
        with heartbeat(reply.pk):
            if settings.CHAT_FAULT_ANSWER_DELAY_SECONDS and attempt == 1:
                # Fault injection for the crash tests and `bench_recovery` only: an answer
                # being written for that long, so a process can be killed in the middle (the
                # retry that recovers it is not slowed).
                time.sleep(settings.CHAT_FAULT_ANSWER_DELAY_SECONDS)
            yield from _answer(
                conversation=conversation,
                reply=reply,
                turn=turn,
                attempt=attempt,
                message=message,
                offer=decision,
                bot_rules=bot_rules,
            )
    except Exception as exc:
        log.exception("turn for message %s failed (attempt %s)", message.pk, attempt)
        yield from _turn_fail(
            conversation=conversation,
            reply=reply,
            message=message,
            error=f"{type(exc).__name__}: {exc}",
        )


def heartbeat(message_id: int):
    """Keep the pending answer `message_id` alive while the block runs: its `updated_at` is
    bumped every 2 s (config/heartbeat.py), from the moment it is saved through retrieval and
    the model's silence to the last token, so the recovery sweep tells an answer being written
    from one a crash cut off (chat.recovery)."""
    return beats.heartbeat(Message, message_id, state=Message.State.PENDING)


def _answer(
    *,
    conversation: Conversation,
    reply: Message,
    turn,
    attempt: int,
    message: Message,
    offer: rules.Decision | None,
    bot_rules: list,
) -> Iterator[dict]:
    """Stream the pipeline's answer, then apply the answer stage's rules: an offer of a person
    (from them or the message stage) goes on the reply; a handoff follows the sent answer."""
    group = realtime.conversation_group(conversation.pk)
    parts: list[str] = []
    saved_at = time.monotonic()
    final = None
    for event in pipeline.run(turn):
        if event["type"] == "tool_call":
            # "Checking your order…" while it runs, then its outcome.
            chat_services.tool_call_broadcast(
                conversation_id=conversation.pk, message_id=reply.pk, event=event
            )
            yield {**event, "message_id": reply.pk}
        elif event["type"] == "token":
            parts.append(event["text"])
            # Ephemeral: tokens are not data, so they go out now, not on commit; the completed
            # message replaces them all.
            realtime.broadcast(group, "message.token", message_id=reply.pk, text=event["text"])
            yield {"type": "token", "text": event["text"]}
            if time.monotonic() - saved_at >= STREAM_SAVE_SECONDS:
                services.message_stream(message=reply, text="".join(parts))
                saved_at = time.monotonic()
        elif event["type"] == "final":
            final = event
    if final is None:
        raise RuntimeError("the pipeline ended without a final answer")

    decided = rules.evaluate(
        bot=conversation.bot,
        stage="answer",
        facts=rules.answer_facts(final, text=message.text),
        rules=bot_rules,
    )
    handoff = _answer_handoff(final, decided)
    offers = [d for d in (offer, decided) if d is not None and not d.handoff]
    outcome, extras = final["outcome"], dict(final.get("extras") or {})
    text = final["text"]
    if handoff is not None:
        # People are coming anyway: no "talk to a person?" beside an answer that hands off,
        # nor the question that asks it (the stored text replaces the streamed tokens).
        extras["offer_human"] = False
        text = _without_offer_question(text)
    elif offers and outcome != Message.Outcome.HANDOFF:
        extras["offer_human"] = True
        outcome = Message.Outcome.HANDOFF_PROPOSED
    calls = services.action_calls_save(
        conversation=conversation, message=reply, calls=final.get("actions") or []
    )
    waiting = [c for c in calls if c.state != ActionCall.State.DONE]
    card = next((c for c in calls if c.state == ActionCall.State.PENDING_CONFIRMATION), None)
    if card is not None:
        # The widget's card: exactly what will happen, with Confirm and Cancel
        # (chat.services.action_confirm).
        extras["action_confirm"] = {"call_id": card.pk, "text": card.confirmation}
    if (
        handoff is None
        and not waiting
        and outcome == Message.Outcome.ANSWERED
        and conversation.bot.ask_if_answered
    ):
        # The widget asks "Did that answer your question?" under it (README, "How a
        # conversation ends").
        extras["ask_answered"] = True
    trace = {**(final.get("trace") or {}), "attempt": attempt}
    trace["escalation_rules"] = {
        "message": offer.reason if offer else None,
        "answer": decided.reason if decided else None,
    }
    reply = services.message_complete(
        message=reply,
        text=text,
        outcome=outcome,
        confidence=final.get("confidence"),
        citations=final.get("citations") or [],
        extras=extras,
        trace=trace,
        requires_followup=bool(final.get("requires_followup")) or bool(offers),
        handoff_follows=handoff is not None,
    )
    sent = reply.state == Message.State.COMPLETE
    if sent and reply.citations:
        yield {"type": "cited_sources", "citations": reply.citations}
    if sent and reply.extras.get("offer_human"):
        reason = final.get("handoff_reason") or (offers[0].reason if offers else "")
        yield {
            "type": "escalation_proposed",
            "reason": reason or "The bot offered to bring in a person.",
        }
    if sent and handoff is not None:
        yield from _escalate(conversation=conversation, decision=handoff, message=message)
    yield _done(conversation, reply)


def _without_offer_question(text: str) -> str:
    """The reply without its closing "Would you like me to connect you with a person?", when a
    rule hands off right after it (an out-of-scope or high-stakes reply asks it)."""
    stripped = text.rstrip()
    if stripped.endswith(OFFER_QUESTION) and stripped != OFFER_QUESTION:
        return stripped[: -len(OFFER_QUESTION)].rstrip()
    return text


def _answer_handoff(final: dict, decided: rules.Decision | None) -> rules.Decision | None:
    """The handoff after a sent answer, if any: a rule's, or the pipeline's own (the customer
    asked for a person, a guardrail blocked the answer), which hands off with or without a
    rule; a rule matching the same turn then sets its priority and queue."""
    if not final.get("handoff"):
        return decided if decided is not None and decided.handoff else None
    reason = final.get("handoff_reason") or "The bot handed the conversation to people."
    blocked = ((final.get("trace") or {}).get("guardrails") or {}).get("blocked")
    if (final.get("trace") or {}).get("action_handoff"):
        # Over an action's policy limit: a person decides, whatever a rule says.
        return rules.Decision(
            rule=None,
            trigger=Trigger.ACTION,
            mode=Mode.HANDOFF,
            priority=final.get("priority") or None,
            queue=decided.queue if decided is not None else None,
            reason=reason,
        )
    if decided is not None and not blocked:
        return rules.Decision(
            rule=decided.rule,
            trigger=decided.trigger,
            mode=Mode.HANDOFF,
            priority=decided.priority,
            queue=decided.queue,
            reason=reason,
        )
    return rules.Decision(
        rule=None,
        trigger=Trigger.GUARDRAIL if blocked else Trigger.HUMAN_REQUEST,
        mode=Mode.HANDOFF,
        priority=final.get("priority") or None,
        queue=None,
        reason=reason,
    )


def _escalate(
    *, conversation: Conversation, decision: rules.Decision, message: Message | None
) -> Iterator[dict]:
    try:
        escalation_open(
            conversation=conversation,
            trigger=decision.trigger,
            reason=decision.reason,
            priority=decision.priority,
            queue=decision.queue,
            rule=decision.rule,
            message=message,
        )
    except services.ConversationStateError:
        return  # closed meanwhile: nobody is left to hand it to
    yield {"type": "escalation_confirmed", "reason": decision.reason}


def _turn_fail(
    *, conversation: Conversation, reply: Message | None, message: Message, error: str
) -> Iterator[dict]:
    """Never a lost turn: the customer is told, and the conversation joins the people's queue
    (with the ai_error rule's priority and queue, if the bot has one)."""
    reason = "The bot could not answer (an error on our side)."
    try:
        if reply is not None:
            services.message_fail(message=reply, error=error)
        with transaction.atomic():
            services.message_add_system(conversation=conversation, text=FAILURE_NOTE)
            escalate_error(conversation=conversation, message=message, reason=reason)
    except Exception:
        # The database itself is failing: the customer's message is saved, and the recovery
        # sweep answers or hands it off once it is back.
        log.exception("could not hand off conversation %s after a failed turn", conversation.pk)
        return
    yield {"type": "escalation_confirmed", "reason": reason}
    if reply is not None:
        reply.refresh_from_db()
    yield _done(conversation, reply)


def _done(conversation: Conversation, reply: Message | None) -> dict:
    complete = reply is not None and reply.state == Message.State.COMPLETE
    return {
        "type": "done",
        "conversation_id": conversation.pk,
        "message_id": reply.pk if reply is not None else None,
        "outcome": reply.outcome if complete else "",
        "text": reply.text if complete else "",
    }


# --- What the pipeline reads ---------------------------------------------------------------
def _turn_build(*, conversation: Conversation, message: Message):
    """The pipeline's input: the customer's text, the window of earlier messages, and the
    summary (this conversation's older questions, then a verified customer's earlier
    conversations)."""
    # One more than the window: the message being answered is in it, and is not history.
    window = selectors.conversation_window(conversation=conversation, turns=WINDOW_TURNS + 1)
    # Answers written after `message` arrived count too: a second quick message is answered
    # after the first one's answer (turns run one at a time), and should know what it said.
    earlier = [
        m
        for m in window
        if m.pk < message.pk or (m.pk > message.pk and m.sender != Message.Sender.USER)
    ][-WINDOW_TURNS:]
    if len(earlier) == WINDOW_TURNS:
        # Older messages fell out of the window: their questions go into the summary.
        conversation_summary_update(conversation=conversation, before_id=earlier[0].pk)
    history = [(m.sender, m.text) for m in earlier]
    summary = "\n".join(
        line for line in [conversation.summary, _customer_history_summary(conversation)] if line
    )
    asking = selectors.action_call_asking(conversation=conversation, before_id=message.pk)
    return pipeline.Turn(
        bot=conversation.bot,
        text=message.text,
        history=history,
        summary=summary,
        user_id=conversation.customer.external_id or None,
        message_id=message.pk,
        pending_action=PendingAction(
            call_id=asking.pk,
            name=asking.name,
            arguments=dict(asking.arguments),
            asked_for=asking.asked_for,
        )
        if asking is not None
        else None,
    )


def _customer_history_summary(conversation: Conversation) -> str:
    previous = selectors.customer_history(
        customer=conversation.customer,
        exclude_conversation_id=conversation.pk,
        limit=HISTORY_CONVERSATIONS,
    )
    lines = []
    for earlier in previous:
        questions = [
            _clip(m.text) for m in earlier.messages.all() if m.sender == Message.Sender.USER
        ][:HISTORY_QUESTIONS]
        if questions:
            day = earlier.created_at.date().isoformat()
            lines.append(f"In a conversation on {day} the customer asked: {'; '.join(questions)}")
    return "\n".join(lines)


def conversation_summary_update(*, conversation: Conversation, before_id: int) -> str:
    """Rebuild the rolling summary from the customer's questions before message `before_id`
    (the oldest one the pipeline reads verbatim); saved only when it changed."""
    older = selectors.customer_questions_before(
        conversation=conversation, before_id=before_id, limit=SUMMARY_QUESTIONS
    )
    summary = ""
    if older:
        summary = "Earlier the customer asked: " + "; ".join(_clip(m.text) for m in older)
    if summary != conversation.summary:
        conversation.summary = summary
        conversation.save(update_fields=["summary"])
    return summary


def _clip(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= SUMMARY_QUESTION_CHARS:
        return text
    return text[: SUMMARY_QUESTION_CHARS - 1].rstrip() + "…"


def escalate_error(*, conversation: Conversation, message: Message, reason: str) -> None:
    """Hand the conversation to people after the bot failed `message`, with the ai_error rule's
    priority and queue if the bot has one (this turn's failure, or the recovery giving up)."""
    decision = rules.evaluate(
        bot=conversation.bot, stage="error", facts=rules.Facts(error=reason, text=message.text)
    )
    escalation_open(
        conversation=conversation,
        trigger=Trigger.AI_ERROR,
        reason=reason,
        rule=decision.rule if decision else None,
        message=message,
    )
