"""escalation.services: every handoff goes through escalation_open and leaves a log."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import services
from conversations.models import Conversation
from conversations.tests.factories import ConversationFactory
from escalation.models import EscalationLog
from escalation.services import (
    escalation_log_resolved,
    escalation_log_responded,
    escalation_open,
    escalation_request,
    escalation_rules_create_defaults,
)

pytestmark = pytest.mark.django_db

Status = Conversation.Status


def test_it_hands_off_with_the_priority_and_queue_and_logs_it(carlas_chat):
    before = timezone.now()
    log = escalation_open(
        conversation=carlas_chat,
        trigger="category",
        reason="High stakes: billing_dispute",
        priority="high",
        queue="tier2",
    )
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.WAITING
    assert (carlas_chat.priority, carlas_chat.queue) == ("high", "tier2")
    assert carlas_chat.response_due_at >= before + timedelta(
        minutes=carlas_chat.bot.response_minutes
    )
    assert (log.trigger, log.priority, log.queue, log.manual) == (
        "category",
        "high",
        "tier2",
        False,
    )
    assert log.first_response_at is None and log.resolved_at is None


def test_a_second_handoff_of_a_waiting_conversation_writes_no_second_log(carlas_chat):
    assert escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    assert escalation_open(conversation=carlas_chat, trigger="keywords", reason="Again") is None
    assert EscalationLog.objects.filter(conversation=carlas_chat).count() == 1


def test_it_refuses_an_unknown_trigger(carlas_chat):
    with pytest.raises(ValueError, match="Unknown trigger"):
        escalation_open(conversation=carlas_chat, trigger="moon_phase", reason="?")


def test_the_log_keeps_the_first_response_and_the_resolution(carlas_chat):
    log = escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    first = timezone.now()
    escalation_log_responded(conversation=carlas_chat, at=first)
    escalation_log_responded(conversation=carlas_chat, at=first + timedelta(minutes=3))
    escalation_log_resolved(conversation=carlas_chat)
    log.refresh_from_db()
    assert log.first_response_at == first  # the first one counts
    assert log.resolved_at is not None


# --- The priority of a request for a person -------------------------------------------------
@pytest.mark.parametrize(
    ("text", "priority"),
    [
        # A new user's words, queued at medium before.
        ("this is useless, I want to talk to a human", "high"),
        ("I'm really frustrated, let me speak to a human", "high"),
        ("can I talk to a person please", "medium"),
        ("Thanks, can I talk to a human?", "medium"),
    ],
)
def test_a_request_for_a_person_in_negative_words_is_queued_high(carlas_chat, text, priority):
    escalation_rules_create_defaults(bot=carlas_chat.bot)  # "Asks for a person": medium
    rule = carlas_chat.bot.escalation_rules.get(name="Asks for a person")
    message, _ = services.message_add_user(conversation=carlas_chat, text=text)

    log = escalation_open(
        conversation=carlas_chat,
        trigger="human_request",
        reason="Asked",
        rule=rule,
        message=message,
    )

    carlas_chat.refresh_from_db()
    assert (log.priority, carlas_chat.priority) == (priority, priority)
    assert log.queue == rule.queue == "tier1"


def test_only_a_request_for_a_person_is_raised(carlas_chat):
    message, _ = services.message_add_user(conversation=carlas_chat, text="This is useless.")
    log = escalation_open(
        conversation=carlas_chat, trigger="keywords", reason="x", priority="low", message=message
    )
    assert log.priority == "low"  # a keyword rule's priority is the admin's to set


def test_the_button_after_an_unhappy_message_is_high(carlas_chat, dan):
    escalation_rules_create_defaults(bot=carlas_chat.bot)
    services.message_add_user(conversation=carlas_chat, text="This is useless, nothing works.")
    assert escalation_request(conversation=carlas_chat, reason="Button").priority == "high"

    calm = ConversationFactory(customer=dan)
    services.message_add_user(conversation=calm, text="Where is my parcel?")
    assert escalation_request(conversation=calm, reason="Button").priority == "medium"
    nothing_written = ConversationFactory(customer=dan)
    assert escalation_request(conversation=nothing_written, reason="Button").priority == "medium"
