"""Action failures in the analytics: a question whose action failed at the business's endpoint
is a knowledge gap of its own kind (GAP_KINDS "action_failed"), and the dashboard counts the
failed calls of the period, for this organization only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics import gap_questions, gaps, selectors
from analytics.definitions import GAP_KINDS
from analytics.selectors import Filters
from analytics.tests.gapbuilders import asked
from conversations.models import ActionCall, Message
from conversations.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def _filters(organization) -> Filters:
    today = timezone.localdate()
    return Filters(organization.pk, today - timedelta(days=29), today)


def _call(conversation, outcome: str) -> ActionCall:
    return ActionCall.objects.create(
        conversation=conversation, name="lookup_order", state="done", outcome=outcome
    )


def test_a_failed_action_is_a_gap_question_of_its_own_kind(acme, shop):
    question = asked(shop, "Where's my order 1234?", outcome="handoff_proposed", category="q")
    Message.objects.filter(reply_to=question).update(
        trace={"category": "q", "actions": [{"outcome": "failed"}], "action_failed": True}
    )
    asked(shop, "Where's my order 1235?", outcome="answered", category="q")  # it worked

    found = gap_questions.questions(**gaps._period(_filters(acme)))

    assert {q.text: q.kinds for q in found.values()} == {
        "Where's my order 1234?": {"action_failed"}
    }
    assert GAP_KINDS["action_failed"] == "An action failed"


def test_the_dashboard_counts_failed_calls_of_its_own_organization(client, owner, acme, shop, gus):
    conversation = ConversationFactory(customer__bot=shop)
    _call(conversation, "ok")
    _call(conversation, "failed")
    _call(ConversationFactory(customer__bot=shop, channel="playground"), "failed")
    _call(ConversationFactory(customer=gus), "failed")  # Globex's

    assert selectors.action_figures(_filters(acme)) == {"calls": 2, "failed": 1}
    client.force_login(owner)
    body = client.get(reverse("analytics", args=[acme.slug])).content.decode()
    assert "Actions: 1 of 2 calls failed" in body
