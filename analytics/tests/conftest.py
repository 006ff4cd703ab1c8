"""`scene`: a small set of Acme conversations built by hand, three days
ago, whose right answers are worked out below (and beside each assertion).

| # | channel    | how it went                                                        | CSAT |
|---|------------|--------------------------------------------------------------------|------|
| 1 | widget     | bot answers (+10 s, thumbs up), customer says Yes at +120 s         | 5    |
| 2 | widget     | bot answers (+20 s), resolved by the bot at +300 s                  | 4    |
| 3 | widget     | hands off at +60 s; Sam replies at +90 s; Sam resolves at +600 s     | 2    |
| 4 | widget     | refund rule at +30 s; Ian replies at +120 s; Sam resolves at +900 s  | 3    |
| 5 | widget     | low-confidence answer (thumbs down) at +15 s, abandoned at +1815 s   |      |
| 6 | api, 23:30 | the bot asks to clarify; still open                                 |      |
| - | playground | resolved by the bot: counted nowhere                                |      |
| - | Globex     | Gus's conversation: counted nowhere in Acme                         |      |
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from analytics.selectors import Filters
from analytics.services import rollups_refresh
from analytics.tests.builders import conversation, escalation, message, moves
from bots.models import Membership
from conversations.tests.pipeline.conftest import load_demo_knowledge
from escalation.tests.factories import EscalationRuleFactory
from knowledge.models import Document


@pytest.fixture
def day():
    return timezone.localdate() - timedelta(days=3)


@pytest.fixture
def scene(acme, acme_bot, globex_bot, agent, admin_member, owner, day):
    ten = datetime.combine(day, time(10, 0), tzinfo=timezone.get_current_timezone())
    sam, ian = agent, admin_member
    refund_rule = EscalationRuleFactory(bot=acme_bot, name="Refunds", trigger="keywords")

    c1 = conversation(
        acme_bot, at=ten, status="resolved", resolution="bot", resolved_after=120, csat=5
    )
    message(c1, after=10, outcome="answered", feedback=1)
    moves(c1, (10, "awaiting_customer"), (120, "resolved"))

    c2 = conversation(
        acme_bot, at=ten, status="resolved", resolution="bot", resolved_after=300, csat=4
    )
    message(c2, after=20, outcome="answered")
    moves(c2, (20, "awaiting_customer"), (300, "resolved"))

    c3 = conversation(
        acme_bot,
        at=ten,
        status="resolved",
        resolution="agent",
        resolved_after=600,
        csat=2,
        agent=sam,
    )
    message(c3, after=60, outcome="handoff")
    escalation(c3, after=60, responded_after=30)
    message(c3, after=85, sender="agent", agent=sam, internal=True)  # a note: not a reply
    message(c3, after=90, sender="agent", agent=sam)
    moves(c3, (60, "waiting"), (80, "active"), (90, "awaiting_customer"), (600, "resolved"))

    c4 = conversation(
        acme_bot,
        at=ten,
        status="closed",
        resolution="agent",
        resolved_after=900,
        csat=3,
        agent=sam,
    )
    message(
        c4,
        after=25,
        outcome="deflected",
        feedback=-1,
        trace={"intent": {"tag": "refunds", "accepted": True}},
    )
    escalation(c4, after=30, trigger="keywords", rule=refund_rule, responded_after=90)
    message(c4, after=120, sender="agent", agent=ian)
    moves(
        c4,
        (30, "waiting"),
        (100, "active"),
        (120, "awaiting_customer"),
        (900, "resolved"),
        (2000, "closed"),
    )

    c5 = conversation(
        acme_bot, at=ten, status="closed", resolution="abandoned", resolved_after=1815
    )
    message(
        c5,
        after=15,
        outcome="low_confidence",
        feedback=-1,
        citations=[{"n": 1, "title": "Returns policy", "url": ""}],
    )
    moves(c5, (15, "awaiting_customer"), (1815, "closed"))

    c6 = conversation(acme_bot, at=ten.replace(hour=23, minute=30), channel="api")
    message(c6, after=5, outcome="clarified")

    playground = conversation(
        acme_bot, at=ten, channel="playground", status="resolved", resolution="bot", csat=1
    )
    message(playground, after=5, outcome="answered", feedback=-1)
    gus = conversation(globex_bot, at=ten, status="resolved", resolution="bot", csat=1)
    message(gus, after=5, outcome="answered", feedback=-1)

    rollups_refresh(full=True)
    return {
        "conversations": [c1, c2, c3, c4, c5, c6],
        "playground": playground,
        "gus": gus,
        "sam": sam,
        "ian": ian,
        "rule": refund_rule,
        "owner": Membership.objects.get(user=owner, organization=acme),
        "filters": Filters(acme.pk, day - timedelta(days=6), day + timedelta(days=1)),
    }


@pytest.fixture
def shop(acme_bot):
    """Acme's demo knowledge, written two months ago: before every question below."""
    load_demo_knowledge(acme_bot)
    Document.objects.filter(bot=acme_bot).update(updated_at=timezone.now() - timedelta(days=60))
    return acme_bot
