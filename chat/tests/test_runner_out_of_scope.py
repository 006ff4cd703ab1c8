"""A question the bot's knowledge does not cover, through the chat runner and the real pipeline
(Acme's demo knowledge): the bot says so and offers a person at once; the escalation rules may
make it hand off instead (category out_of_scope). And a request for a person in negative words
is queued at high with the default rules."""

import pytest

from chat import runner
from conversations import services
from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory
from conversations.tests.pipeline.conftest import load_demo_knowledge
from escalation.models import EscalationLog
from escalation.services import escalation_rules_create_defaults

pytestmark = pytest.mark.django_db

UNCOVERED = "Is there a student discount?"


@pytest.fixture
def demo_bot(acme_bot):
    """Acme's bot with the demo knowledge and the default escalation rules a new bot gets."""
    load_demo_knowledge(acme_bot)
    escalation_rules_create_defaults(bot=acme_bot)
    return acme_bot


def _turn(conversation, text):
    message, _ = services.message_add_user(conversation=conversation, text=text)
    return message, list(runner.turn_run(message=message))


def test_out_of_scope_is_admitted_and_a_person_offered_with_the_default_rules(demo_bot, carla):
    chat = ConversationFactory(customer=carla)
    _, events = _turn(chat, UNCOVERED)

    answer = chat.messages.get(sender=Message.Sender.AI)
    assert answer.text.startswith("Sorry, I don't have information about that")
    assert answer.outcome == Message.Outcome.HANDOFF_PROPOSED
    assert answer.extras["offer_human"] is True
    assert answer.requires_followup is True
    assert answer.trace["category"] == "out_of_scope"
    assert "escalation_proposed" in [e["type"] for e in events]
    chat.refresh_from_db()
    assert chat.with_bot and not EscalationLog.objects.exists()  # offered, not forced

    # A second miss: the offer stands, no handoff forced, no loop of questions.
    _turn(chat, "Can I bring my dog to your office?")
    second = chat.messages.filter(sender=Message.Sender.AI).order_by("-id").first()
    assert second.text.startswith("I'm afraid I don't have information about that either.")
    assert second.extras["offer_human"] is True and second.trace["category"] == "out_of_scope"

    # "Yes" takes the offer.
    _turn(chat, "yes please")
    chat.refresh_from_db()
    assert chat.status == Conversation.Status.WAITING
    assert EscalationLog.objects.get(conversation=chat).trigger == "human_request"


def test_an_admin_can_make_out_of_scope_hand_off_at_once(demo_bot, carla):
    demo_bot.escalation_rules.create(
        name="Unknown questions go to people",
        position=5,
        trigger="category",
        categories="out_of_scope",
        mode="handoff",
        priority="medium",
        queue="tier2",
    )
    chat = ConversationFactory(customer=carla)
    message, events = _turn(chat, UNCOVERED)

    answer = chat.messages.get(sender=Message.Sender.AI)
    assert answer.state == Message.State.COMPLETE  # the honest answer is sent first
    assert answer.extras["offer_human"] is False  # people are coming: nothing to offer
    # Nor a question whose answer is already "yes": the handoff notice follows at once.
    assert answer.text.startswith("Sorry, I don't have information about that")
    assert answer.text.endswith("A person from our team can help with it.")
    done = events[-1]
    assert done["type"] == "done" and done["text"] == answer.text
    chat.refresh_from_db()
    assert (chat.status, chat.queue) == (Conversation.Status.WAITING, "tier2")
    log = EscalationLog.objects.get(conversation=chat)
    assert (log.trigger, log.rule.name, log.message) == (
        "category",
        "Unknown questions go to people",
        message,
    )
    assert log.package["category"] == "out_of_scope"
    assert log.package["suggested_action"].startswith("The bot's knowledge does not cover")
    assert "escalation_confirmed" in [e["type"] for e in events]


@pytest.mark.parametrize(
    ("text", "priority"),
    [
        ("this is useless, I want to talk to a human", "high"),
        ("can I talk to a person please", "medium"),
    ],
)
def test_the_priority_of_a_request_for_a_person(demo_bot, carla, text, priority):
    chat = ConversationFactory(customer=carla)
    _turn(chat, text)

    chat.refresh_from_db()
    assert (chat.status, chat.priority) == (Conversation.Status.WAITING, priority)
    log = EscalationLog.objects.get(conversation=chat)
    assert (log.rule.name, log.priority) == ("Asks for a person", priority)


def test_the_classifiers_request_in_negative_words_is_high_without_any_rule(carlas_chat):
    # No rules at all: the pipeline's own handoff (the classifier read a request for a person).
    _turn(carlas_chat, "This is useless. Get me a human.")

    carlas_chat.refresh_from_db()
    assert (carlas_chat.status, carlas_chat.priority) == (Conversation.Status.WAITING, "high")
    log = EscalationLog.objects.get(conversation=carlas_chat)
    assert (log.trigger, log.rule, log.priority) == ("human_request", None, "high")
