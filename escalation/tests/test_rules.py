"""escalation.rules: each trigger fires when it should and not otherwise, the first matching
rule wins, and a rule's parameters are checked before it is saved."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from bots.services import bot_create
from conversations import services
from conversations.models import Conversation
from conversations.tests.factories import ConversationFactory
from escalation import rules
from escalation.defaults import DEFAULT_RULES
from escalation.models import EscalationRule
from escalation.rules import Facts
from escalation.tests.factories import EscalationRuleFactory

pytestmark = pytest.mark.django_db


def _decide(bot, stage, **facts):
    return rules.evaluate(bot=bot, stage=stage, facts=Facts(**facts))


CASES = [
    # trigger parameters, stage, facts that fire, facts that do not
    (
        {"trigger": "human_request", "phrases": "real person\ntalk to a human"},
        "message",
        {"text": "Can I talk to a human, please?"},
        {"text": "Is the human resources page up?"},
    ),
    (
        {"trigger": "keywords", "phrases": "refund\nchargeback"},
        "message",
        {"text": "I want a REFUND."},
        {"text": "I want a refurbished one."},
    ),
    (
        {"trigger": "sentiment", "level": "angry"},
        "message",
        {"text": "x", "level": "urgent"},
        {"text": "x", "level": "frustrated"},
    ),
    (
        {"trigger": "frustration", "threshold": 0.7},
        "message",
        {"frustration": 0.7},
        {"frustration": 0.69},
    ),
    (
        {"trigger": "unresolved", "message_count": 6},
        "message",
        {"customer_messages": 6},
        {"customer_messages": 5},
    ),
    (
        {"trigger": "returning", "window_hours": 24},
        "message",
        {"returning_after_hours": 3.5},
        {"returning_after_hours": 30},
    ),
    (
        {"trigger": "low_confidence", "threshold": 0.35},
        "answer",
        {"confidence": 0.2},
        {"confidence": 0.35},
    ),
    (
        {"trigger": "category", "categories": "legal, security"},
        "answer",
        {"category": "high_stakes", "subtype": "security"},
        {"category": "high_stakes", "subtype": "billing_dispute"},
    ),
    (
        {"trigger": "category", "categories": "high_stakes"},
        "answer",
        {"category": "high_stakes", "subtype": "complaint"},
        {"category": "answerable"},
    ),
    (
        {"trigger": "category", "categories": "out_of_scope"},
        "answer",
        {"category": "out_of_scope"},
        {"category": "answerable"},
    ),
    (
        {"trigger": "human_request", "phrases": ""},
        "answer",
        {"asked_for_person": True},
        {"category": "answerable"},
    ),
    ({"trigger": "ai_error"}, "error", {"error": "Timeout"}, {}),
]


@pytest.mark.parametrize(("params", "stage", "fires", "quiet"), CASES)
def test_each_trigger_fires_and_stays_quiet(acme_bot, params, stage, fires, quiet):
    rule = EscalationRuleFactory(bot=acme_bot, **params)
    rule.full_clean()
    decision = _decide(acme_bot, stage, **fires)
    assert decision is not None and decision.rule == rule
    assert decision.reason.startswith(rule.name)
    assert _decide(acme_bot, stage, **quiet) is None


def test_a_trigger_fires_only_at_its_own_stage(acme_bot):
    EscalationRuleFactory(bot=acme_bot, trigger="low_confidence", threshold=0.5)
    EscalationRuleFactory(bot=acme_bot, trigger="keywords", phrases="refund")
    assert _decide(acme_bot, "message", text="x", confidence=0.1) is None
    assert _decide(acme_bot, "answer", text="refund") is None


def test_the_first_enabled_matching_rule_wins(acme_bot):
    EscalationRuleFactory(bot=acme_bot, position=1, name="Off", phrases="refund", enabled=False)
    second = EscalationRuleFactory(
        bot=acme_bot, position=2, name="Money", phrases="refund", priority="high", queue="tier2"
    )
    EscalationRuleFactory(bot=acme_bot, position=3, name="Also money", phrases="refund")
    decision = _decide(acme_bot, "message", text="refund please")
    assert decision.rule == second
    assert (decision.priority, decision.queue, decision.mode) == ("high", "tier2", "handoff")


def test_another_bots_rules_do_not_apply(acme_bot, globex_bot):
    EscalationRuleFactory(bot=globex_bot, phrases="refund")
    assert _decide(acme_bot, "message", text="refund") is None


def test_explain_says_for_every_rule_whether_and_why_it_fires(acme_bot):
    off = EscalationRuleFactory(bot=acme_bot, position=1, phrases="refund", enabled=False)
    on = EscalationRuleFactory(bot=acme_bot, position=2, phrases="refund")
    quiet = EscalationRuleFactory(bot=acme_bot, position=3, trigger="frustration", threshold=0.9)
    checks, winner = rules.explain(rules=rules.rule_list(acme_bot), facts=Facts(text="Refund!"))
    assert [c.rule for c in checks] == [off, on, quiet]
    assert [c.fired for c in checks] == [False, True, False]
    assert checks[0].why.startswith("Disabled")
    assert "refund" in checks[1].why
    assert winner.rule == on


def test_message_facts_come_from_the_stored_message(carla):
    earlier = ConversationFactory(customer=carla)
    Conversation.objects.filter(pk=earlier.pk).update(
        created_at=timezone.now() - timedelta(hours=5), last_message_at=None
    )
    conversation = ConversationFactory(customer=carla)
    first, _ = services.message_add_user(conversation=conversation, text="WHY!!! idiots")
    second, _ = services.message_add_user(conversation=conversation, text="Hello?")
    facts = rules.message_facts(first)
    assert facts.level == "angry" and facts.customer_messages == 1
    assert 4.9 < facts.returning_after_hours < 5.1
    # Only a new conversation's first message is a return.
    assert rules.message_facts(second).returning_after_hours is None
    assert rules.message_facts(second).customer_messages == 2


# --- Parameters ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"trigger": "keywords", "phrases": "  \n "}, "phrases", "keywords"),
        ({"trigger": "sentiment"}, "level", "sentiment level"),
        ({"trigger": "frustration"}, "threshold", "frustration at or above"),
        ({"trigger": "low_confidence", "threshold": 1.5}, "threshold", "from 0 to 1"),
        ({"trigger": "category", "categories": ""}, "categories", "at least one"),
        ({"trigger": "category", "categories": "legal, moon"}, "categories", "Unknown category"),
        ({"trigger": "unresolved"}, "message_count", "number of customer messages"),
        ({"trigger": "returning"}, "window_hours", "window in hours"),
    ],
)
def test_a_rule_without_its_parameter_is_refused_on_that_field(acme_bot, params, field, words):
    rule = EscalationRule(bot=acme_bot, name="R", **{"phrases": "", **params})
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    assert words in " ".join(caught.value.message_dict[field])


# --- Defaults --------------------------------------------------------------------------------
def test_a_new_bot_gets_the_default_rules(acme):
    bot = bot_create(organization=acme, name="Fresh")
    saved = list(bot.escalation_rules.order_by("position"))
    assert [r.name for r in saved] == [r["name"] for r in DEFAULT_RULES]
    for rule in saved:
        rule.full_clean()  # every default is a valid rule
    handoff = rules.evaluate(bot=bot, stage="message", facts=Facts(text="A real person please"))
    assert (handoff.rule.name, handoff.mode) == ("Asks for a person", "handoff")
    legal = rules.evaluate(
        bot=bot, stage="answer", facts=Facts(category="high_stakes", subtype="legal")
    )
    assert (legal.mode, legal.priority, legal.queue) == ("handoff", "high", "manager")
    unsure = rules.evaluate(bot=bot, stage="answer", facts=Facts(confidence=0.2))
    assert unsure.mode == "offer"
    assert rules.evaluate(bot=bot, stage="error", facts=Facts(error="x")).priority == "high"


def test_the_data_migration_gives_existing_bots_the_same_defaults(acme_bot, globex_bot):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("escalation.migrations.0003_default_rules")
    assert migration.RULES == DEFAULT_RULES
    own = EscalationRuleFactory(bot=globex_bot)
    migration.add_defaults(apps, None)
    assert acme_bot.escalation_rules.count() == len(DEFAULT_RULES)
    assert list(globex_bot.escalation_rules.all()) == [own]  # a bot with rules keeps its own


def test_explain_finds_a_request_for_a_person_by_phrase_or_by_the_classifier(acme_bot):
    EscalationRuleFactory(bot=acme_bot, trigger="human_request", phrases="real person")
    found = rules.rule_list(acme_bot)
    by_phrase, _ = rules.explain(rules=found, facts=Facts(text="A real person!"))
    by_classifier, _ = rules.explain(rules=found, facts=Facts(text="x", asked_for_person=True))
    assert (by_phrase[0].fired, by_phrase[0].stage) == (True, "message")
    assert (by_classifier[0].fired, by_classifier[0].stage) == (True, "answer")


# --- Out of scope and the priority of a request for a person -------------------------------
def test_out_of_scope_is_a_category_a_rule_may_name(acme_bot):
    rule = EscalationRuleFactory(
        bot=acme_bot, trigger="category", categories="out_of_scope, legal", mode="handoff"
    )
    rule.full_clean()  # a known category
    final = {"outcome": "handoff_proposed", "trace": {"category": "out_of_scope", "subtype": ""}}
    facts = rules.answer_facts(final, text="Is there a student discount?")
    assert facts.category == "out_of_scope" and not facts.asked_for_person
    decision = rules.evaluate(bot=acme_bot, stage="answer", facts=facts)
    assert decision.rule == rule and decision.handoff
    assert decision.reason.endswith("the message is classified out_of_scope")


@pytest.mark.parametrize(
    ("priority", "level", "queued"),
    [
        ("medium", "frustrated", "high"),
        ("low", "angry", "high"),
        ("medium", "urgent", "high"),
        ("urgent", "angry", "urgent"),  # raised, never lowered
        ("medium", "neutral", "medium"),
        ("medium", "positive", "medium"),
        ("low", "", "low"),
    ],
)
def test_a_request_for_a_person_in_negative_words_is_high(priority, level, queued):
    assert rules.request_priority(priority, level) == queued
