"""The chat runner: one turn from a saved customer message to a complete (or handed-off)
answer, the rolling summary, and the recovery of turns a crash cut off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from chat import recovery, runner, tasks
from chat.tests import fixtures_rt
from chat.tests.fixtures_rt import SHIPPING
from conversations import services
from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory, MessageFactory

scripted = fixtures_rt.scripted
faq_bot = fixtures_rt.faq_bot

pytestmark = pytest.mark.django_db


def _ask(conversation, text="How long does shipping take?"):
    message, created = services.message_add_user(conversation=conversation, text=text)
    assert created
    return message


def _answers(conversation):
    return list(conversation.messages.filter(sender=Message.Sender.AI).order_by("id"))


def test_it_streams_tokens_then_completes_the_answer(carlas_chat, scripted, broadcasts):
    message = _ask(carlas_chat)
    events = list(runner.turn_run(message=message))

    tokens = [e["text"] for e in events if e["type"] == "token"]
    assert "".join(tokens) == SHIPPING
    [answer] = _answers(carlas_chat)
    assert answer.state == Message.State.COMPLETE
    assert answer.text == SHIPPING and answer.reply_to == message
    assert answer.outcome == "answered" and answer.confidence == 0.9
    assert answer.trace["scripted"] and answer.trace["attempt"] == 1
    assert [e["type"] for e in events[len(tokens) :]] == ["cited_sources", "done"]
    assert events[-1] == {
        "type": "done",
        "conversation_id": carlas_chat.pk,
        "message_id": answer.pk,
        "outcome": "answered",
        "text": SHIPPING,
    }
    # Tokens go straight to the conversation's group, tagged with the pending message.
    relayed = [(g, p) for g, e, p in broadcasts if e == "message.token"]
    assert {g for g, _ in relayed} == {f"conv.{carlas_chat.pk}"}
    assert [p["text"] for _, p in relayed] == tokens
    assert {p["message_id"] for _, p in relayed} == {answer.pk}


def test_an_answered_turn_awaits_the_customer_and_asks_if_it_answered(carlas_chat, scripted):
    list(runner.turn_run(message=_ask(carlas_chat)))
    [answer] = _answers(carlas_chat)
    assert answer.extras.get("ask_answered") is True
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Conversation.Status.AWAITING and carlas_chat.with_bot


def test_a_bot_told_not_to_ask_does_not_ask(carlas_chat, scripted):
    carlas_chat.bot.ask_if_answered = False
    carlas_chat.bot.save()
    list(runner.turn_run(message=_ask(carlas_chat)))
    [answer] = _answers(carlas_chat)
    assert "ask_answered" not in answer.extras


def test_it_saves_the_answer_so_far_while_streaming(carlas_chat, scripted, monkeypatch):
    monkeypatch.setattr(runner, "STREAM_SAVE_SECONDS", 0)
    message = _ask(carlas_chat)
    seen = []
    for event in runner.turn_run(message=message):
        if event["type"] == "token":
            seen.append(_answers(carlas_chat)[0].text)
    assert seen[1] == "Standard"  # saved after the first token, read at the second
    assert seen[-1] == SHIPPING.rsplit(" ", 1)[0]


def test_the_pipeline_reads_the_window_and_the_message(carlas_chat, scripted):
    MessageFactory(conversation=carlas_chat, text="Hi there")
    MessageFactory(conversation=carlas_chat, sender="ai", text="Hello! How can I help?")
    MessageFactory(conversation=carlas_chat, sender="system", text="A note")
    message = _ask(carlas_chat)
    list(runner.turn_run(message=message))
    [turn] = scripted.turns
    assert turn.bot == carlas_chat.bot
    assert turn.text == "How long does shipping take?"
    assert turn.history == [
        ("user", "Hi there"),
        ("ai", "Hello! How can I help?"),
        ("system", "A note"),
    ]
    assert turn.summary == ""


def test_older_questions_are_kept_in_the_rolling_summary(carlas_chat, scripted):
    for n in range(8):
        MessageFactory(conversation=carlas_chat, text=f"Question {n}")
        MessageFactory(conversation=carlas_chat, sender="ai", text=f"Answer {n}")
    message = _ask(carlas_chat, "And express shipping?")
    list(runner.turn_run(message=message))
    [turn] = scripted.turns
    # The window is the last 10 messages before this one; Question 0..2 fell out of it.
    assert len(turn.history) == 10 and turn.history[0] == ("user", "Question 3")
    carlas_chat.refresh_from_db()
    assert carlas_chat.summary == ("Earlier the customer asked: Question 0; Question 1; Question 2")
    assert turn.summary == carlas_chat.summary


def test_the_summary_is_rebuilt_the_same_way_every_time(carlas_chat):
    questions = [
        MessageFactory(conversation=carlas_chat, text=f"Question {n} " + "x" * 200)
        for n in range(12)
    ]
    window_starts = questions[2].pk
    first = runner.conversation_summary_update(conversation=carlas_chat, before_id=window_starts)
    again = runner.conversation_summary_update(conversation=carlas_chat, before_id=window_starts)
    assert first == again == carlas_chat.summary
    assert first.count(";") == 1  # Question 0 and 1
    assert all(len(q) <= runner.SUMMARY_QUESTION_CHARS for q in first.split(": ", 1)[1].split("; "))


def test_a_verified_customer_brings_their_earlier_questions(vera, scripted):
    earlier = ConversationFactory(customer=vera)
    MessageFactory(conversation=earlier, text="Where is order 1001?")
    now = ConversationFactory(customer=vera)
    list(runner.turn_run(message=_ask(now, "Any news?")))
    [turn] = scripted.turns
    assert "the customer asked: Where is order 1001?" in turn.summary


def test_an_anonymous_customer_brings_no_history(carla, scripted):
    earlier = ConversationFactory(customer=carla)
    MessageFactory(conversation=earlier, text="Where is order 1001?")
    now = ConversationFactory(customer=carla)
    list(runner.turn_run(message=_ask(now, "Any news?")))
    assert scripted.turns[0].summary == ""


def test_it_hands_off_when_the_pipeline_says_so(carlas_chat, scripted):
    scripted.final = {
        "outcome": "handoff",
        "handoff": True,
        "handoff_reason": "Asked for a refund",
        "priority": "high",
    }
    events = list(runner.turn_run(message=_ask(carlas_chat)))
    assert {"type": "escalation_confirmed", "reason": "Asked for a refund"} in events
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Conversation.Status.WAITING
    assert carlas_chat.priority == "high"
    assert carlas_chat.handoff_reason == "Asked for a refund"


def test_an_offer_of_a_person_is_proposed_not_made(carlas_chat, scripted):
    scripted.final = {
        "outcome": "handoff_proposed",
        "extras": {"offer_human": True, "suggestions": []},
        "handoff_reason": "Low confidence",
    }
    events = list(runner.turn_run(message=_ask(carlas_chat)))
    assert {"type": "escalation_proposed", "reason": "Low confidence"} in events
    assert not any(e["type"] == "escalation_confirmed" for e in events)
    carlas_chat.refresh_from_db()
    # Still the bot's: the customer's turn to take the offer or not.
    assert carlas_chat.status == Conversation.Status.AWAITING and carlas_chat.with_bot


def test_a_failing_turn_is_never_lost(carlas_chat, scripted):
    scripted.error = RuntimeError("the vector index is gone")
    events = list(runner.turn_run(message=_ask(carlas_chat)))

    [answer] = _answers(carlas_chat)
    assert answer.state == Message.State.FAILED
    assert "the vector index is gone" in answer.trace["error"]
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Conversation.Status.WAITING
    notes = carlas_chat.messages.filter(sender=Message.Sender.SYSTEM).values_list("text", flat=True)
    assert runner.FAILURE_NOTE in notes
    assert [e["type"] for e in events if e["type"] != "token"] == [
        "escalation_confirmed",
        "done",
    ]
    assert events[-1]["message_id"] == answer.pk and events[-1]["text"] == ""


def test_the_bot_is_silent_once_a_person_is_involved(carlas_chat, scripted):
    services.conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    message = _ask(carlas_chat)
    assert list(runner.turn_run(message=message)) == []
    assert _answers(carlas_chat) == [] and scripted.turns == []


def test_a_message_is_answered_once(carlas_chat, scripted):
    message = _ask(carlas_chat)
    list(runner.turn_run(message=message))
    assert list(runner.turn_run(message=message)) == []
    assert len(_answers(carlas_chat)) == 1


def test_it_answers_from_the_faq_with_the_real_pipeline(faq_bot, carla):
    conversation = ConversationFactory(customer=carla)
    events = list(runner.turn_run(message=_ask(conversation, "How long does shipping take?")))
    done = events[-1]
    assert done["type"] == "done"
    assert "3 to 5 business days" in done["text"]
    assert "".join(e["text"] for e in events if e["type"] == "token") == done["text"]
    assert any(e["type"] == "cited_sources" for e in events)


# --- Recovery ---------------------------------------------------------------------------------
def _age(message, seconds):
    then = timezone.now() - timedelta(seconds=seconds)
    Message.objects.filter(pk=message.pk).update(created_at=then, updated_at=then)


def test_recovery_fails_a_stale_answer_and_answers_again(carlas_chat, scripted):
    message = _ask(carlas_chat)
    cut_off = services.message_start_bot(conversation=carlas_chat, reply_to=message)
    _age(message, 600)
    _age(cut_off, 600)

    assert recovery.turn_recover() == {"stale": 1, "retried": 1, "handed_off": 0}
    first, second = _answers(carlas_chat)
    assert first.state == Message.State.FAILED
    assert second.state == Message.State.COMPLETE and second.text == SHIPPING
    assert second.trace["attempt"] == 2
    assert recovery.turn_recover() == {"stale": 0, "retried": 0, "handed_off": 0}


def test_recovery_answers_a_message_whose_turn_never_started(carlas_chat, scripted):
    message = _ask(carlas_chat)
    assert recovery.turn_recover()["retried"] == 0  # too recent: its turn may be starting
    _age(message, 600)
    assert recovery.turn_recover()["retried"] == 1
    assert _answers(carlas_chat)[0].state == Message.State.COMPLETE


def test_recovery_hands_off_after_the_last_attempt(carlas_chat, scripted):
    message = _ask(carlas_chat)
    for _ in range(runner.MAX_ATTEMPTS):
        services.message_fail(
            message=services.message_start_bot(conversation=carlas_chat, reply_to=message),
            error="cut off",
        )
    assert recovery.turn_recover() == {"stale": 0, "retried": 0, "handed_off": 1}
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Conversation.Status.WAITING
    assert "3 times" in carlas_chat.handoff_reason
    assert scripted.turns == []


def test_recovery_leaves_conversations_that_moved_on(carlas_chat, scripted):
    old = _ask(carlas_chat, "First question")
    services.message_fail(
        message=services.message_start_bot(conversation=carlas_chat, reply_to=old), error="x"
    )
    _ask(carlas_chat, "Second question")  # its own turn answers; the first is moot
    MessageFactory(conversation=carlas_chat, sender="ai", text="Answer", reply_to=None)
    assert recovery.turn_recover()["retried"] == 0


def test_recovery_runs_every_minute_in_the_worker(carlas_chat, scripted):
    schedule = Schedule.objects.get(func="chat.tasks.turn_recover")
    assert schedule.schedule_type == Schedule.MINUTES and schedule.minutes == 1
    message = _ask(carlas_chat)
    _age(message, 600)
    assert tasks.turn_recover()["retried"] == 1
