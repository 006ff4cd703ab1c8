"""escalation.sla: a waiting conversation nobody answered in time is raised a level, noted
internally, and its queue told again."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Conversation, Message
from conversations.services import conversation_set_status, message_add_agent
from escalation import sla
from escalation.models import Notification
from escalation.services import escalation_open
from escalation.sla import conversations_raise_overdue

pytestmark = pytest.mark.django_db

Status = Conversation.Status


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("escalation.tasks.async_task", lambda func, pk, **kw: calls.append(pk))
    return calls


def _hand_off(conversation, priority="medium", minutes_ago=6):
    escalation_open(
        conversation=conversation, trigger="human_request", reason="Asked", priority=priority
    )
    # As if the handoff happened `minutes_ago` and the 5-minute deadline passed.
    past = timezone.now() - timedelta(minutes=minutes_ago)
    Conversation.objects.filter(pk=conversation.pk).update(
        handoff_at=past, response_due_at=past + timedelta(minutes=conversation.bot.response_minutes)
    )
    conversation.refresh_from_db()


def _notes(conversation):
    return list(
        Message.objects.filter(
            conversation=conversation, sender=Message.Sender.SYSTEM, internal=True
        ).values_list("text", flat=True)
    )


def test_an_unanswered_conversation_is_raised_noted_and_its_queue_notified(
    carlas_chat, owner, queued, broadcasts, staff_broadcasts, django_capture_on_commit_callbacks
):
    _hand_off(carlas_chat, priority="medium")
    assert not Notification.objects.exists(), "medium handoffs notify nobody"
    broadcasts.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert conversations_raise_overdue() == 1

    carlas_chat.refresh_from_db()
    assert carlas_chat.priority == "high"
    due_in = carlas_chat.response_due_at - timezone.now()
    assert timedelta(minutes=4, seconds=50) < due_in <= timedelta(minutes=5)
    assert _notes(carlas_chat) == [
        "No answer for 6 minutes: priority raised to high; the Tier 1 queue was notified again."
    ]
    # High only now, so the queue hears of it for the first time.
    (email,) = Notification.objects.filter(conversation=carlas_chat)
    assert email.target == "ada@acme.example"
    assert "No agent has answered for 6 minutes; the priority is now high." in email.body
    assert queued == [email.pk]
    # The console's queue is pushed the change; the customer hears nothing of it.
    org_updates = [p for g, e, p in broadcasts if g.startswith("org.")]
    assert org_updates and org_updates[-1]["conversation"]["id"] == carlas_chat.pk
    assert not [g for g, e, p in broadcasts if g == f"conv.{carlas_chat.pk}"]
    notes = [p["message"]["text"] for g, e, p in staff_broadcasts if e == "message.created"]
    assert notes == _notes(carlas_chat), "the note goes to the console only"


def test_it_is_raised_one_level_per_missed_deadline(carlas_chat, owner, queued):
    _hand_off(carlas_chat, priority="low")
    seen = []
    for _ in range(4):
        conversations_raise_overdue()
        carlas_chat.refresh_from_db()
        seen.append(carlas_chat.priority)
        Conversation.objects.filter(pk=carlas_chat.pk).update(
            response_due_at=timezone.now() - timedelta(seconds=1)
        )
    assert seen == ["medium", "high", "urgent", "urgent"]
    notes = _notes(carlas_chat)
    assert notes[0] == "No answer for 6 minutes: priority raised to medium."
    assert notes[-1] == (
        "No answer for 6 minutes: still urgent; the Tier 1 queue was notified again."
    )
    # Told at high, at urgent, and again while urgent; never at medium.
    assert Notification.objects.filter(conversation=carlas_chat).count() == 3


def test_a_conversation_not_yet_due_is_left_alone(carlas_chat, owner, queued):
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    assert conversations_raise_overdue() == 0
    carlas_chat.refresh_from_db()
    assert carlas_chat.priority == "medium"
    assert _notes(carlas_chat) == []


def test_a_conversation_an_agent_answered_is_not_raised(carlas_chat, agent, queued):
    _hand_off(carlas_chat, priority="medium")
    message_add_agent(conversation=carlas_chat, agent=agent, text="Hi Carla, looking into it.")
    # Put back in the queue: waiting again, with the deadline long past.
    conversation_set_status(conversation=carlas_chat, status=Status.WAITING, actor=agent)
    Conversation.objects.filter(pk=carlas_chat.pk).update(
        response_due_at=timezone.now() - timedelta(minutes=1)
    )
    assert conversations_raise_overdue() == 0
    carlas_chat.refresh_from_db()
    assert carlas_chat.priority == "medium"
    assert carlas_chat.response_due_at is None, "answered: sweeps stop looking at it"
    assert _notes(carlas_chat) == []


def test_an_agent_note_is_not_an_answer(carlas_chat, agent, queued):
    _hand_off(carlas_chat, priority="medium")
    Message.objects.create(
        conversation=carlas_chat,
        sender=Message.Sender.AGENT,
        agent=agent,
        internal=True,
        text="Checking with billing first.",
    )
    assert conversations_raise_overdue() == 1


def test_conversations_with_the_bot_or_an_agent_are_not_raised(carlas_chat, dan, agent, queued):
    from conversations.tests.factories import ConversationFactory

    past = timezone.now() - timedelta(minutes=1)
    Conversation.objects.filter(pk=carlas_chat.pk).update(response_due_at=past)  # status ai
    active = ConversationFactory(customer=dan)
    _hand_off(active)
    Conversation.objects.filter(pk=active.pk).update(
        status=Status.ACTIVE, assigned_agent=agent, response_due_at=past
    )
    assert conversations_raise_overdue() == 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_sweeps_raise_a_conversation_once(carlas_chat, owner, queued, monkeypatch):
    from django.db import connection

    _hand_off(carlas_chat, priority="medium")
    inside, release = threading.Event(), threading.Event()
    real = sla.conversation_set_priority

    def slow_set_priority(**kwargs):
        # The first sweep holds the row lock here while the second sweep runs.
        inside.set()
        release.wait(10)
        return real(**kwargs)

    monkeypatch.setattr(sla, "conversation_set_priority", slow_set_priority)
    results = {}

    def sweep(name):
        try:
            results[name] = conversations_raise_overdue()
        finally:
            connection.close()

    first = threading.Thread(target=sweep, args=("first",))
    first.start()
    try:
        assert inside.wait(10)
        second = threading.Thread(target=sweep, args=("second",))
        second.start()
        second.join(10)
        assert results.get("second") == 0, "the locked row is skipped, not waited for"
    finally:
        release.set()
        first.join(10)
    assert results["first"] == 1
    # And a third sweep after the first committed finds the new deadline in the future.
    assert conversations_raise_overdue() == 0
    carlas_chat.refresh_from_db()
    assert carlas_chat.priority == "high"
    assert len(_notes(carlas_chat)) == 1
    assert Notification.objects.filter(conversation=carlas_chat).count() == 1
