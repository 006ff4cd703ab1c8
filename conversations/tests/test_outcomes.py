"""How conversations end: awaiting the customer, the customer's Yes and No, reopening within
the bot's window, the rating, and the worker's inactivity sweep (conversations/services/
outcomes.py). Times are set, never slept for."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.services import (
    ConversationStateError,
    MessageRejected,
    conversation_close_idle,
    conversation_handoff,
    conversation_rate,
    conversation_resolve_by_customer,
    conversation_resume,
    conversation_set_status,
    conversations_close_expired,
    conversations_close_idle,
    message_add_agent,
    message_add_user,
    message_answer_rejected,
    message_complete,
    message_feedback,
    message_start_bot,
)

pytestmark = pytest.mark.django_db

Status = Conversation.Status
Resolution = Conversation.Resolution
SOURCE = [{"n": 1, "chunk_id": 1, "document_id": 1, "title": "Passwords", "url": ""}]


def bot_answers(conversation, text="How do I reset my password?", **complete):
    """Carla asks and the bot answers (answered, with a source unless told otherwise)."""
    question, _ = message_add_user(conversation=conversation, text=text)
    reply = message_start_bot(conversation=conversation, reply_to=question)
    fields = {"outcome": "answered", "citations": SOURCE, **complete}
    reply = message_complete(message=reply, text="Open Settings › Password.", **fields)
    conversation.refresh_from_db()
    return question, reply


def moves(conversation):
    return [(t.from_status, t.to_status) for t in conversation.transitions.all()]


def idle(conversation, minutes):
    """The customer has said nothing for `minutes`."""
    at = timezone.now() - timedelta(minutes=minutes)
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=at)


# --- Awaiting the customer --------------------------------------------------------------------
def test_the_bots_answer_leaves_the_conversation_awaiting_the_customer(carlas_chat):
    bot_answers(carlas_chat)
    assert carlas_chat.status == Status.AWAITING
    assert carlas_chat.assigned_agent is None and carlas_chat.with_bot
    assert moves(carlas_chat) == [("ai", "awaiting_customer")]


def test_an_answer_that_hands_off_does_not_await_the_customer(carlas_chat):
    bot_answers(carlas_chat, outcome="handoff")
    assert carlas_chat.status == Status.AI
    question, _ = message_add_user(conversation=carlas_chat, text="And?")
    reply = message_start_bot(conversation=carlas_chat, reply_to=question)
    message_complete(message=reply, text="A person…", outcome="answered", handoff_follows=True)
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AI and moves(carlas_chat) == []


def test_a_second_question_sent_while_the_bot_answers_keeps_it_with_the_bot(carlas_chat):
    first, _ = message_add_user(conversation=carlas_chat, text="How do I reset it?")
    reply = message_start_bot(conversation=carlas_chat, reply_to=first)
    message_add_user(conversation=carlas_chat, text="And my e-mail too?")
    message_complete(message=reply, text="Settings.", outcome="answered")
    carlas_chat.refresh_from_db()
    # Its turn is next: the bot must still be allowed to answer it.
    assert carlas_chat.status == Status.AI and carlas_chat.bot_may_answer


def test_the_customers_reply_gives_it_back_to_the_bot_before_the_turn(carlas_chat):
    bot_answers(carlas_chat)
    question, _ = message_add_user(conversation=carlas_chat, text="Thanks, and my e-mail?")
    assert carlas_chat.status == Status.AI and carlas_chat.bot_may_answer
    message_start_bot(conversation=carlas_chat, reply_to=question)  # not refused
    assert moves(carlas_chat)[-1] == ("awaiting_customer", "ai")


def test_the_customers_reply_gives_it_back_to_the_agent_who_answered(carlas_chat, agent):
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    conversation_set_status(conversation=carlas_chat, status=Status.ACTIVE, agent=agent)
    message_add_agent(conversation=carlas_chat, agent=agent, text="Sam here, what's up?")
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AWAITING and carlas_chat.with_agent
    question, _ = message_add_user(conversation=carlas_chat, text="My order is late")
    assert carlas_chat.status == Status.ACTIVE and carlas_chat.assigned_agent == agent
    assert not carlas_chat.bot_may_answer
    with pytest.raises(ConversationStateError):
        message_start_bot(conversation=carlas_chat, reply_to=question)


def test_a_handoff_from_awaiting_the_customer_with_the_bot_joins_the_queue(carlas_chat):
    bot_answers(carlas_chat)
    assert conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    assert carlas_chat.status == Status.WAITING
    assert moves(carlas_chat)[-1] == ("awaiting_customer", "waiting")


# --- Yes and No -------------------------------------------------------------------------------
def test_yes_resolves_the_conversation_as_resolved_by_the_bot(carlas_chat, broadcasts):
    _, reply = bot_answers(carlas_chat)
    conversation_resolve_by_customer(conversation=carlas_chat, message_id=reply.pk)
    carlas_chat.refresh_from_db()
    reply.refresh_from_db()
    assert carlas_chat.status == Status.RESOLVED and carlas_chat.resolution == Resolution.BOT
    assert carlas_chat.resolved_at is not None and reply.confirmed is True
    assert moves(carlas_chat)[-1] == ("awaiting_customer", "resolved")


def test_only_the_latest_answer_can_be_confirmed_and_only_once(carlas_chat):
    _, older = bot_answers(carlas_chat)
    _, latest = bot_answers(carlas_chat, text="And my e-mail?")
    with pytest.raises(ConversationStateError, match="latest answer"):
        conversation_resolve_by_customer(conversation=carlas_chat, message_id=older.pk)
    message_answer_rejected(conversation=carlas_chat, message_id=latest.pk, offer_person=True)
    with pytest.raises(ConversationStateError, match="already told"):
        conversation_resolve_by_customer(conversation=carlas_chat, message_id=latest.pk)
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AWAITING


def test_an_answer_that_was_not_answered_cannot_be_confirmed(carlas_chat):
    _, reply = bot_answers(carlas_chat, outcome="clarified", citations=[])
    with pytest.raises(ConversationStateError, match="not an answer"):
        conversation_resolve_by_customer(conversation=carlas_chat, message_id=reply.pk)


def test_a_conversation_with_people_cannot_be_resolved_by_the_customers_yes(carlas_chat):
    _, reply = bot_answers(carlas_chat)
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    with pytest.raises(ConversationStateError, match="Waiting for an agent"):
        conversation_resolve_by_customer(conversation=carlas_chat, message_id=reply.pk)


def test_no_offers_a_person_and_keeps_the_conversation_with_the_bot(carlas_chat):
    _, reply = bot_answers(carlas_chat)
    message_answer_rejected(conversation=carlas_chat, message_id=reply.pk, offer_person=True)
    reply.refresh_from_db()
    notice = carlas_chat.messages.last()
    assert reply.confirmed is False
    assert notice.sender == Message.Sender.SYSTEM and notice.extras == {"offer_human": True}
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AWAITING


# --- Reopening --------------------------------------------------------------------------------
def test_a_message_within_the_window_reopens_a_bot_resolved_conversation_with_the_bot(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    _, reply = bot_answers(carlas_chat)
    conversation_resolve_by_customer(conversation=carlas_chat, message_id=reply.pk)
    Conversation.objects.filter(pk=carlas_chat.pk).update(
        resolved_at=timezone.now() - timedelta(hours=23)
    )
    with django_capture_on_commit_callbacks(execute=True):
        message_add_user(conversation=carlas_chat, text="Actually it still fails")
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AI and carlas_chat.resolution == ""
    assert carlas_chat.reopened_count == 1 and carlas_chat.resolved_at is None
    last = carlas_chat.transitions.last()
    assert (last.from_status, last.to_status, last.reason) == ("resolved", "ai", "reopened")
    notice = carlas_chat.messages.last()
    assert notice.sender == Message.Sender.SYSTEM and not notice.internal
    assert "reopened" in notice.text
    sent = [p["message"]["text"] for g, _e, p in broadcasts if "message" in p]
    assert notice.text in sent


def test_a_bot_resolved_conversation_reopens_with_the_bot_even_after_a_handoff(carlas_chat):
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    conversation_set_status(
        conversation=carlas_chat, status=Status.RESOLVED, resolution=Resolution.BOT
    )
    message_add_user(conversation=carlas_chat, text="Hello again")
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AI


def test_an_agent_resolved_conversation_reopens_in_the_queue(carlas_chat, agent):
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    conversation_set_status(conversation=carlas_chat, status=Status.ACTIVE, agent=agent)
    conversation_set_status(
        conversation=carlas_chat, status=Status.RESOLVED, resolution=Resolution.AGENT
    )
    message_add_user(conversation=carlas_chat, text="It broke again")
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.WAITING and carlas_chat.reopened_count == 1


def test_after_the_window_the_resolved_conversation_takes_no_message(carlas_chat, carla):
    carla.bot.reopen_hours = 2
    carla.bot.save()
    _, reply = bot_answers(carlas_chat)
    conversation_resolve_by_customer(conversation=carlas_chat, message_id=reply.pk)
    Conversation.objects.filter(pk=carlas_chat.pk).update(
        resolved_at=timezone.now() - timedelta(hours=2, minutes=1)
    )
    carlas_chat.refresh_from_db()
    with pytest.raises(MessageRejected, match="closed"):
        message_add_user(conversation=carlas_chat, text="Hello?")
    resumed = conversation_resume(
        bot=carla.bot, customer=carla, conversation_id=carlas_chat.pk, channel="widget"
    )
    assert resumed is None  # the widget's next message starts a new conversation


# --- The rating -------------------------------------------------------------------------------
def test_it_rates_a_resolved_conversation_once_with_a_comment(carlas_chat):
    with pytest.raises(ConversationStateError, match="once it is resolved"):
        conversation_rate(conversation=carlas_chat, score=5)
    _, reply = bot_answers(carlas_chat)
    conversation_resolve_by_customer(conversation=carlas_chat, message_id=reply.pk)
    conversation_rate(conversation=carlas_chat, score=5, comment="  Quick and right.  ")
    carlas_chat.refresh_from_db()
    assert carlas_chat.csat == 5 and carlas_chat.csat_comment == "Quick and right."
    assert carlas_chat.csat_at is not None
    with pytest.raises(ConversationStateError, match="already been rated"):
        conversation_rate(conversation=carlas_chat, score=1)
    carlas_chat.refresh_from_db()
    assert carlas_chat.csat == 5


def test_it_refuses_a_comment_that_is_not_text_or_too_long(carlas_chat):
    conversation_set_status(
        conversation=carlas_chat, status=Status.RESOLVED, resolution=Resolution.AGENT
    )
    with pytest.raises(ValueError, match="text"):
        conversation_rate(conversation=carlas_chat, score=4, comment=["no"])
    with pytest.raises(ValueError, match="longer"):
        conversation_rate(conversation=carlas_chat, score=4, comment="x" * 2001)


# --- The inactivity sweep ---------------------------------------------------------------------
def test_an_idle_cited_answer_is_resolved_by_the_bot(carlas_chat):
    bot_answers(carlas_chat)
    idle(carlas_chat, 31)
    assert conversations_close_idle() == 1
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.RESOLVED and carlas_chat.resolution == Resolution.BOT
    assert moves(carlas_chat)[-1] == ("awaiting_customer", "resolved")


def test_it_waits_for_the_bots_inactivity_window(carlas_chat, carla):
    bot_answers(carlas_chat)
    idle(carlas_chat, 29)
    assert conversations_close_idle() == 0
    carla.bot.inactivity_minutes = 10
    carla.bot.save()
    assert conversations_close_idle() == 1


@pytest.mark.parametrize(
    "spoil",
    ["no_sources", "clarified", "thumbs_down", "said_no", "angry"],
)
def test_an_idle_conversation_without_a_clean_answer_is_abandoned(carlas_chat, spoil):
    if spoil == "angry":
        angry, _ = message_add_user(
            conversation=carlas_chat, text="This is TERRIBLE and useless, I am furious!!!"
        )
        assert angry.trace["escalation"]["level"] in ("frustrated", "angry", "urgent")
    complete = {}
    if spoil == "no_sources":
        complete = {"citations": []}
    if spoil == "clarified":
        complete = {"outcome": "clarified"}
    _, reply = bot_answers(carlas_chat, **complete)
    if spoil == "thumbs_down":
        message_feedback(message=reply, value=-1)
    if spoil == "said_no":
        message_answer_rejected(conversation=carlas_chat, message_id=reply.pk, offer_person=True)
    idle(carlas_chat, 31)
    conversations_close_idle()
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.CLOSED
    assert carlas_chat.resolution == Resolution.ABANDONED


def test_it_leaves_conversations_an_agent_holds_or_the_bot_is_answering(carlas_chat, vera, agent):
    bot_answers(carlas_chat)
    conversation_handoff(conversation=carlas_chat, reason="Asked for a person")
    conversation_set_status(conversation=carlas_chat, status=Status.ACTIVE, agent=agent)
    message_add_agent(conversation=carlas_chat, agent=agent, text="Sam here")
    idle(carlas_chat, 600)
    answering = Conversation.objects.create(bot=vera.bot, customer=vera)
    message_add_user(conversation=answering, text="Hi")
    idle(answering, 600)
    assert conversations_close_idle() == 0


def test_a_resolved_conversation_past_its_window_is_closed_and_keeps_who_resolved_it(
    carlas_chat,
):
    _, reply = bot_answers(carlas_chat)
    conversation_resolve_by_customer(conversation=carlas_chat, message_id=reply.pk)
    now = timezone.now()
    assert conversations_close_expired(now=now + timedelta(hours=23)) == 0
    assert conversations_close_expired(now=now + timedelta(hours=24, seconds=1)) == 1
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.CLOSED and carlas_chat.resolution == Resolution.BOT
    assert moves(carlas_chat)[-1] == ("resolved", "closed")


def test_every_status_has_its_time_in_the_audit_trail(carlas_chat):
    _, reply = bot_answers(carlas_chat)
    conversation_resolve_by_customer(conversation=carlas_chat, message_id=reply.pk)
    conversations_close_expired(now=timezone.now() + timedelta(days=2))
    trail = list(carlas_chat.transitions.all())
    assert [t.to_status for t in trail] == ["awaiting_customer", "resolved", "closed"]
    assert all(a.created_at <= b.created_at for a, b in zip(trail, trail[1:], strict=False))


@pytest.mark.django_db(transaction=True)
def test_a_sweep_skips_a_conversation_another_sweep_holds(carlas_chat):
    bot_answers(carlas_chat)
    idle(carlas_chat, 31)
    held, release = threading.Event(), threading.Event()

    def other_sweep():
        try:
            with transaction.atomic():
                Conversation.objects.select_for_update().get(pk=carlas_chat.pk)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_sweep)
    thread.start()
    try:
        assert held.wait(10)
        assert conversations_close_idle() == 0  # skipped, not waited for
    finally:
        release.set()
        thread.join(10)
    assert conversations_close_idle() == 1
    assert conversation_close_idle(conversation=carlas_chat) == ""  # ended once
