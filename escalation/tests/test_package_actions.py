"""The handoff package carries the action the bot handed over (over its policy limit): its name,
the customer's arguments and why, built from the answer's trace, shown in the console and on
the history page; a malformed or absent one adds nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations.models import Message
from conversations.tests.factories import ConversationFactory, MessageFactory
from escalation.models import EscalationLog, Trigger
from escalation.package import package_build
from escalation.services import escalation_open

pytestmark = pytest.mark.django_db

HANDED = {
    "name": "start_refund",
    "arguments": {"order_id": "1235", "amount": 80},
    "reason": "Refund $80.00 for order 1235: amount 80.00 is above the limit of 50.00",
}


def _answered(conversation, trace):
    question = MessageFactory(conversation=conversation, text="Refund $80 on order 1235")
    return Message.objects.create(
        conversation=conversation,
        sender="ai",
        reply_to=question,
        text="That's more than I can do on my own, so I'm passing it to a person on our team.",
        outcome="handoff",
        trace=trace,
    )


def test_the_package_carries_the_action_and_the_console_shows_it(client, agent, carla):
    conversation = ConversationFactory(customer=carla)
    _answered(conversation, {"category": "action", "action_handoff": HANDED})

    escalation_open(conversation=conversation, trigger=Trigger.ACTION, reason=HANDED["reason"])

    [log] = EscalationLog.objects.filter(conversation=conversation)
    assert log.package["action"] == HANDED
    assert "policy limit" in log.package["suggested_action"]
    client.force_login(agent)
    for url in (
        reverse("console_conversation", args=["acme", conversation.pk]),
        reverse("history_conversation", args=["acme", conversation.pk]),
    ):
        html = client.get(url).content.decode()
        assert "Action requested" in html and "start_refund" in html, url
        assert "order_id 1235" in html and "amount 80" in html


@pytest.mark.parametrize("handed", [None, "start_refund", {"name": 3, "arguments": "x"}])
def test_a_missing_or_malformed_action_record_adds_nothing_wrong(carla, handed):
    conversation = ConversationFactory(customer=carla)
    answer = _answered(conversation, {"category": "action", "action_handoff": handed})

    package = package_build(
        conversation=conversation, trigger=Trigger.ACTION, reason="over", message=answer
    )

    if isinstance(handed, dict):
        assert package["action"] == {"name": "3", "arguments": {}, "reason": ""}
    else:
        assert "action" not in package
