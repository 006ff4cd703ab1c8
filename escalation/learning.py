"""Learning from agents, the reads: the FAQ an agent's reply drafts ("Save as an FAQ") and the
bot's suggested reply to the customer's latest message (the console's "Insert").

Both read a conversation the selectors already gave the member; neither writes. The writes are
escalation.services.conversation_save_faq and the agent's ordinary reply.
"""

from __future__ import annotations

from dataclasses import dataclass

from conversations import pipeline
from conversations import selectors as conversation_selectors
from conversations.models import Conversation, Message

Sender = Message.Sender
# Bot turns that were about something the customer asked, not a greeting, gibberish or a request
# for a person: the customer message before such a turn is "the question".
_NOT_QUESTIONS = {"greeting", "nonsense", "human"}
# A bot reply worth offering an agent as a draft: it tried to answer from the knowledge.
_ANSWERS = {Message.Outcome.ANSWERED, Message.Outcome.LOW_CONFIDENCE}


def _public(conversation: Conversation):
    return conversation.messages.filter(internal=False, state=Message.State.COMPLETE).order_by("id")


def faq_draft(*, conversation: Conversation) -> dict[str, str]:
    """{"question", "answer"}: the agent's last reply, and the customer's question it answered:
    the message the bot last tried to answer before a person took over (so "Can I pay with
    Bitcoin?", not the "a person please" that followed), else the customer's last message before
    the reply. Empty strings when there is nothing to draft from; the agent edits either."""
    messages = list(_public(conversation).only("id", "sender", "text", "trace"))
    replies = [m for m in messages if m.sender == Sender.AGENT]
    if not replies:
        return {"question": "", "answer": ""}
    first_reply = replies[0]
    before = [m for m in messages if m.pk < first_reply.pk]
    question = ""
    for i in range(len(before) - 1, 0, -1):
        bot_turn, asked = before[i], before[i - 1]
        if (
            bot_turn.sender == Sender.AI
            and asked.sender == Sender.USER
            and (bot_turn.trace or {}).get("category") not in _NOT_QUESTIONS
        ):
            question = asked.text
            break
    if not question:
        asked = [m for m in before if m.sender == Sender.USER]
        question = asked[-1].text if asked else ""
    return {"question": " ".join(question.split()), "answer": replies[-1].text.strip()}


def faq_form(*, conversation: Conversation) -> dict | None:
    """The context `templates/escalation/_save_faq.html` needs as `faq`, for a page showing a
    conversation (the console, the history page): its draft for a resolved or closed one, None
    (no form) for one still open."""
    if conversation.status not in (Conversation.Status.RESOLVED, Conversation.Status.CLOSED):
        return None
    return {**faq_draft(conversation=conversation), "errors": {}}


@dataclass
class Suggestion:
    text: str
    message_id: int  # the customer message it answers
    fresh: bool  # drafted now (the bot had not answered that message), else the bot's own turn


def reply_suggestion(*, conversation: Conversation) -> Suggestion | None:
    """The bot's draft for the customer's latest message, or None when it has no answer.

    The bot's own turn after that message when it tried to answer (sent, or withheld by a
    guardrail or a handoff); otherwise the message arrived while people had the conversation,
    and the pipeline, which writes nothing, drafts one now from the same knowledge."""
    latest = _public(conversation).filter(sender=Sender.USER).last()
    if latest is None:
        return None
    turn = conversation.messages.filter(pk__gt=latest.pk, sender=Sender.AI).order_by("id").first()
    if turn is not None:
        text = (turn.trace or {}).get("unsent_text") or ""
        if not text and turn.outcome in _ANSWERS and turn.state == Message.State.COMPLETE:
            text = turn.text
        return Suggestion(text.strip(), latest.pk, fresh=False) if text.strip() else None
    if conversation.messages.filter(pk__gt=latest.pk, sender=Sender.AGENT).exists():
        return None  # a person already answered it
    window = conversation_selectors.conversation_window(conversation=conversation, turns=11)
    history = [(m.sender, m.text) for m in window if m.pk < latest.pk][-10:]
    # A draft acts on nothing: running the bot's actions for it would call the business's
    # systems (a refund, say) for a message no one has answered yet.
    turn_input = pipeline.Turn(
        bot=conversation.bot, text=latest.text, history=history, actions=False
    )
    final = [event for event in pipeline.run(turn_input) if event["type"] == "final"][-1]
    if final["outcome"] not in _ANSWERS or not final["text"].strip():
        return None
    return Suggestion(final["text"].strip(), latest.pk, fresh=True)
