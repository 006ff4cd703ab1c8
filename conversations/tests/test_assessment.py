"""conversations.assessment: sentiment, the ten signals, the level, and frustration that builds up
over a conversation and the customer's recent contacts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations import services
from conversations.assessment import assess_message, assess_text, level_for, text_signals
from conversations.models import Conversation
from conversations.tests.factories import ConversationFactory, MessageFactory
from escalation.services import escalation_open

pytestmark = pytest.mark.django_db

ANGRY = "THIS IS THE WORST SERVICE EVER!!! You idiots lost my damn parcel"
CALM = "Hi, my parcel {n} has not arrived yet. Could you check where it is, please?"


@pytest.mark.parametrize(
    ("text", "signal"),
    [
        ("I'm going to switch to a competitor", "threatening_churn"),
        ("Cancel my subscription now", "threatening_churn"),
        ("This is bullshit", "profanity"),
        ("WHY DOES NOTHING EVER WORK HERE", "all_caps"),
        ("Where is it!!", "multiple_exclamations"),
        ("My lawyer will hear about this", "legal_threat"),
        ("You charged me twice for one order", "billing_dispute"),
        ("I need it by tomorrow, it's urgent", "time_pressure"),
        ("I have been waiting for 3 days", "long_wait"),
    ],
)
def test_it_reads_each_text_signal(text, signal):
    assert signal in text_signals(text)


@pytest.mark.parametrize(
    "text",
    [
        "How long does shipping take?",
        "Can I pay with PayPal or a USB stick? See the FAQ and PDF.",
        "Thanks, that helped!",
        "I'd like to know about your Scunthorpe store",
    ],
)
def test_a_plain_question_has_no_signals(text):
    assert text_signals(text) == []


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("Thanks, that was really helpful!", "positive"),
        ("How long does shipping take?", "neutral"),
        ("I have been waiting for 3 days", "frustrated"),
        (ANGRY, "angry"),
        ("I need this fixed urgently, the order is broken", "urgent"),
        ("I will talk to my lawyer", "urgent"),
    ],
)
def test_it_gives_each_message_a_level(text, level):
    assert assess_text(text).level == level


def test_the_levels_order_by_the_worst_signal():
    assert level_for(0.9, []) == "positive"
    assert level_for(0.9, ["profanity"]) == "angry"
    assert level_for(-0.1, ["legal_threat"]) == "urgent"


def test_it_stores_sentiment_signals_and_frustration_on_the_message_and_conversation(
    carlas_chat,
):
    message, _ = services.message_add_user(conversation=carlas_chat, text=ANGRY)
    message.refresh_from_db()
    carlas_chat.refresh_from_db()
    assert message.sentiment < -0.5
    assert {"profanity", "all_caps", "multiple_exclamations"} <= set(message.signals)
    assert message.trace["escalation"]["level"] == "angry"
    assert carlas_chat.sentiment_level == "angry"
    assert 0 < carlas_chat.frustration < 1
    assert carlas_chat.frustration == message.trace["escalation"]["frustration"]


def test_frustration_builds_up_over_a_conversation(carlas_chat):
    levels = []
    # Each message more upset than the one before: since the sentiment reads "still has not
    # arrived!!" as the complaint it is (issue 15), the third has to say more than "This is
    # ridiculous" to be the worst.
    for text in [
        "Where is my parcel?",
        "It still has not arrived!!",
        "This is ridiculous!! Useless, I want my money back",
    ]:
        services.message_add_user(conversation=carlas_chat, text=text)
        carlas_chat.refresh_from_db()
        levels.append(carlas_chat.frustration)
    assert levels[0] < levels[1] < levels[2]


def test_it_notices_the_customer_restating_an_issue(carlas_chat):
    services.message_add_user(conversation=carlas_chat, text="My parcel never arrived")
    again, _ = services.message_add_user(
        conversation=carlas_chat, text="As I said, the parcel has not arrived"
    )
    other, _ = services.message_add_user(conversation=carlas_chat, text="Do you sell gift cards?")
    assert "repeated_issue" in again.signals
    assert "repeated_issue" not in other.signals


def _earlier_contact(customer, text, *, days_ago, handed_off=False):
    conversation = ConversationFactory(customer=customer, status=Conversation.Status.RESOLVED)
    MessageFactory(conversation=conversation, text=text)
    if handed_off:
        conversation.status = Conversation.Status.AI
        conversation.save(update_fields=["status"])
        escalation_open(conversation=conversation, trigger="human_request", reason="Asked")
    Conversation.objects.filter(pk=conversation.pk).update(
        created_at=timezone.now() - timedelta(days=days_ago)
    )
    conversation.messages.update(created_at=timezone.now() - timedelta(days=days_ago))
    return conversation


def test_a_calm_fourth_contact_about_the_same_issue_outranks_one_angry_first_message(carla, dan):
    for days_ago in (6, 4, 2):
        _earlier_contact(carla, CALM.format(n="AB-12"), days_ago=days_ago)
    fourth = ConversationFactory(customer=carla)
    calm = assess_message(conversation=fourth, text=CALM.format(n="AB-12"))

    angry = assess_message(conversation=ConversationFactory(customer=dan), text=ANGRY)

    assert calm.level in ("neutral", "frustrated")  # no anger in the words themselves
    assert angry.level == "angry"
    assert "repeated_issue" in calm.signals
    assert calm.frustration > angry.frustration


def test_contacts_older_than_two_weeks_do_not_count(carla):
    for days_ago in (30, 25, 20):
        _earlier_contact(carla, CALM.format(n="AB-12"), days_ago=days_ago)
    assessment = assess_message(
        conversation=ConversationFactory(customer=carla), text=CALM.format(n="AB-12")
    )
    assert "repeated_issue" not in assessment.signals
    assert assessment.detail["recent_contacts"] == 0


def test_a_recent_handoff_is_a_previous_escalation(carla, dan):
    _earlier_contact(carla, "My card was declined", days_ago=3, handed_off=True)
    _earlier_contact(dan, "My card was declined", days_ago=3)
    text = "How do I change my address?"
    assert (
        "previous_escalation"
        in assess_message(conversation=ConversationFactory(customer=carla), text=text).signals
    )
    assert (
        "previous_escalation"
        not in assess_message(conversation=ConversationFactory(customer=dan), text=text).signals
    )


def test_a_long_wait_for_a_person_is_noticed_without_being_said(carlas_chat):
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    Conversation.objects.filter(pk=carlas_chat.pk).update(
        handoff_at=timezone.now() - timedelta(minutes=25)
    )
    carlas_chat.refresh_from_db()
    assert "long_wait" in assess_message(conversation=carlas_chat, text="Hello?").signals


def test_a_fresh_handoff_is_not_a_long_wait(carlas_chat):
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    carlas_chat.refresh_from_db()
    assert "long_wait" not in assess_message(conversation=carlas_chat, text="Hello?").signals
