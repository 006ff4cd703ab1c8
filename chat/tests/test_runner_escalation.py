"""The escalation rules in the chat runner: a message-stage handoff means the bot does not
answer, an offer rides on its reply, an answer-stage handoff follows the sent answer, and a
failure goes to people with the ai_error rule's priority. Every handoff leaves a log with its
package."""

import pytest

from chat import runner
from chat.tests import fixtures_rt
from conversations import services
from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory
from escalation.models import EscalationLog
from escalation.services import escalation_rules_create_defaults
from escalation.tests.factories import EscalationRuleFactory

scripted = fixtures_rt.scripted

pytestmark = pytest.mark.django_db


def _turn(conversation, text="How long does shipping take?"):
    message, _ = services.message_add_user(conversation=conversation, text=text)
    return message, list(runner.turn_run(message=message))


def _bot_answers(conversation):
    return list(conversation.messages.filter(sender=Message.Sender.AI))


def test_a_message_stage_handoff_means_no_bot_answer(carlas_chat, scripted):
    rule = EscalationRuleFactory(
        bot=carlas_chat.bot, trigger="keywords", phrases="lawsuit", priority="urgent"
    )
    message, events = _turn(carlas_chat, "I am preparing a lawsuit")

    assert scripted.turns == []  # the pipeline never ran
    assert _bot_answers(carlas_chat) == []
    carlas_chat.refresh_from_db()
    assert (carlas_chat.status, carlas_chat.priority) == (Conversation.Status.WAITING, "urgent")
    [log] = EscalationLog.objects.filter(conversation=carlas_chat)
    assert (log.rule, log.trigger, log.message, log.manual) == (rule, "keywords", message, False)
    assert [e["type"] for e in events] == ["escalation_confirmed", "done"]
    assert events[-1]["message_id"] is None


def test_a_message_stage_offer_rides_on_the_bots_answer(carlas_chat, scripted):
    EscalationRuleFactory(bot=carlas_chat.bot, trigger="sentiment", level="angry", mode="offer")
    _, events = _turn(carlas_chat, "WHERE IS MY PARCEL you idiots!!")

    [answer] = _bot_answers(carlas_chat)
    assert answer.text == fixtures_rt.SHIPPING
    assert answer.extras["offer_human"] is True
    assert answer.outcome == Message.Outcome.HANDOFF_PROPOSED
    assert answer.trace["escalation_rules"]["message"].startswith("Rule")
    assert any(e["type"] == "escalation_proposed" for e in events)
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Conversation.Status.AWAITING and carlas_chat.with_bot
    assert not EscalationLog.objects.exists()


def test_an_answer_stage_offer_on_low_confidence(carlas_chat, scripted):
    EscalationRuleFactory(
        bot=carlas_chat.bot, trigger="low_confidence", threshold=0.5, mode="offer"
    )
    scripted.final = {"confidence": 0.3}
    _turn(carlas_chat)
    [answer] = _bot_answers(carlas_chat)
    assert answer.extras["offer_human"] and answer.requires_followup
    scripted.final = {"confidence": 0.8}
    _turn(carlas_chat, "And to Norway?")
    assert not _bot_answers(carlas_chat)[-1].extras["offer_human"]


def test_an_answer_stage_handoff_sends_the_answer_then_hands_off(carlas_chat, scripted):
    rule = EscalationRuleFactory(
        bot=carlas_chat.bot, trigger="category", categories="security", queue="tier2"
    )
    scripted.final = {
        "outcome": "handoff_proposed",
        "extras": {"offer_human": True},
        "trace": {"category": "high_stakes", "subtype": "security"},
    }
    message, events = _turn(carlas_chat, "Someone logged in to my account")

    [answer] = _bot_answers(carlas_chat)
    assert answer.state == Message.State.COMPLETE and answer.text == fixtures_rt.SHIPPING
    assert answer.extras["offer_human"] is False  # handed off: nothing left to offer
    carlas_chat.refresh_from_db()
    assert (carlas_chat.status, carlas_chat.queue) == (Conversation.Status.WAITING, "tier2")
    log = EscalationLog.objects.get(conversation=carlas_chat)
    assert (log.rule, log.trigger, log.message) == (rule, "category", message)
    assert (log.package["drafted"], log.package["drafted_sent"]) == (answer.text, True)
    assert [e["type"] for e in events if e["type"] != "token"] == [
        "cited_sources",
        "escalation_confirmed",
        "done",
    ]


def test_a_pipeline_handoff_with_no_rule_still_hands_off(carlas_chat, scripted):
    scripted.final = {
        "outcome": "handoff",
        "handoff": True,
        "handoff_reason": "Guardrail: the answer contained a forbidden phrase",
        "trace": {"guardrails": {"blocked": True}},
    }
    _turn(carlas_chat)
    log = EscalationLog.objects.get(conversation=carlas_chat)
    assert (log.trigger, log.rule) == ("guardrail", None)
    assert log.reason.startswith("Guardrail")


def test_the_classifiers_request_for_a_person_takes_the_human_request_rules_queue(
    carlas_chat, scripted
):
    rule = EscalationRuleFactory(
        bot=carlas_chat.bot, trigger="human_request", phrases="", queue="manager"
    )
    scripted.final = {
        "outcome": "handoff",
        "handoff": True,
        "handoff_reason": "Customer asked for a person",
        "trace": {"category": "human"},
    }
    _turn(carlas_chat, "Can I speak with your staff")
    log = EscalationLog.objects.get(conversation=carlas_chat)
    assert (log.trigger, log.rule, log.queue) == ("human_request", rule, "manager")


def test_an_ai_error_hands_off_with_the_ai_error_rule(carlas_chat, scripted):
    rule = EscalationRuleFactory(
        bot=carlas_chat.bot, trigger="ai_error", priority="urgent", queue="tier2"
    )
    scripted.error = RuntimeError("the model server is down")
    message, _ = _turn(carlas_chat)
    carlas_chat.refresh_from_db()
    assert (carlas_chat.status, carlas_chat.priority) == (Conversation.Status.WAITING, "urgent")
    log = EscalationLog.objects.get(conversation=carlas_chat)
    assert (log.trigger, log.rule, log.message, log.queue) == ("ai_error", rule, message, "tier2")
    assert "failed" in log.package["summary"]


def test_an_ai_error_without_a_rule_still_logs(carlas_chat, scripted):
    scripted.error = RuntimeError("boom")
    _turn(carlas_chat)
    log = EscalationLog.objects.get(conversation=carlas_chat)
    assert (log.trigger, log.rule, log.priority) == ("ai_error", None, "medium")


def test_the_handoff_package_tells_the_agent_what_happened(carlas_chat, scripted):
    EscalationRuleFactory(bot=carlas_chat.bot, trigger="frustration", threshold=0.3, name="Fed up")
    _turn(carlas_chat, "Where is my parcel? It has not arrived.")
    _turn(carlas_chat, "My parcel STILL HAS NOT ARRIVED!! Useless, you idiots")
    package = EscalationLog.objects.get(conversation=carlas_chat).package

    sentences = [s for s in package["summary"].split(". ") if s]
    assert len(sentences) == 3, package["summary"]
    assert package["summary"].startswith("Carla wrote 2 messages")
    assert "frustration" in package["summary"]
    # A parcel that has not arrived is a complaint, calmly put: frustrated, not angry (issue 15).
    assert [p["level"] for p in package["trajectory"]] == ["frustrated", "angry"]
    customer = carlas_chat.messages.filter(sender=Message.Sender.USER).order_by("id")
    assert [(p["id"], p["compound"]) for p in package["trajectory"]] == [
        (m.pk, m.sentiment) for m in customer
    ]
    assert package["retrieved"][0]["title"] == "Shipping"
    assert package["drafted"] == fixtures_rt.SHIPPING
    assert "repeated_issue" in package["signals"]
    assert "raised this before" in package["suggested_action"]


faq_bot = fixtures_rt.faq_bot


def test_the_default_rules_with_the_real_pipeline(faq_bot, carla, dan):
    escalation_rules_create_defaults(bot=faq_bot)
    asks = ConversationFactory(customer=carla)
    _, events = _turn(asks, "Can I talk to a real person?")
    assert _bot_answers(asks) == []  # the message-stage rule: people answer, not the bot
    log = EscalationLog.objects.get(conversation=asks)
    assert (log.rule.name, log.queue) == ("Asks for a person", "tier1")

    hacked = ConversationFactory(customer=dan)
    _turn(hacked, "Someone hacked my account and changed my password")
    [answer] = _bot_answers(hacked)
    assert answer.state == Message.State.COMPLETE  # the bot's holding answer is sent first
    log = EscalationLog.objects.get(conversation=hacked)
    assert (log.rule.name, log.priority, log.queue) == ("Security concern", "high", "tier2")
    assert log.package["category"] == "security"
    assert log.package["suggested_action"].startswith("Secure the account first")
