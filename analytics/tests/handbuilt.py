"""A small hand-built set of Acme conversations whose figures are worked out by hand (below),
for the dashboard's views and CSV tests; one Globex conversation that no Acme figure may show,
and one Playground test that no figure counts.

All five Acme conversations start at T0 (about three hours ago) on one day:

    A  widget  resolved by the bot at T0+5 min, CSAT 5
    B  widget  asked for a person at T0+1 min (rule "Asks for a person"), Sam's first reply
               at T0+3 min, resolved by Sam at T0+10 min, CSAT 3; status trail
               ai -(60 s)-> waiting -(120 s)-> active -(420 s)-> resolved
    C  api     closed as abandoned
    D  widget  waiting since it asked for a person at T0+30 s (no rule)
    E  widget  resolved by Ian at T0+20 min, CSAT 4

So: 5 conversations, 4 ended; AI resolution 1/4 = 25 %, escalation 2/5 = 40 %, abandonment
1/4 = 25 %. Time to escalation 30 s and 60 s (p50 30 s, p90 60 s, nearest rank); first
response 120 s; resolution by the bot 300 s, by an agent 600 s and 1200 s (p50 600 s). Time
waiting 120 s on average (one stay). CSAT bot 5.00 (1), agent 3.50 (2: one 3, one 4), all
4.00 (3). Sam handled and resolved 1 (first response 120 s, resolution 600 s, CSAT 3); Ian 1
(resolution 1200 s, CSAT 4).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from conversations.models import Conversation, Transition
from conversations.tests.factories import ConversationFactory, CustomerFactory
from escalation.models import EscalationLog
from escalation.tests.factories import EscalationRuleFactory

Status = Conversation.Status
Resolution = Conversation.Resolution


def _at(conversation, moment) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(created_at=moment)
    conversation.refresh_from_db()


def _conversation(bot, *, name, t0, channel="widget", **fields):
    customer = CustomerFactory(bot=bot, name=name)
    conversation = ConversationFactory(customer=customer, channel=channel, **fields)
    _at(conversation, t0)
    return conversation


def _escalation(conversation, *, at, trigger="human_request", rule=None, first_response_at=None):
    log = EscalationLog.objects.create(
        conversation=conversation,
        trigger=trigger,
        rule=rule,
        reason="Asked for a person",
        manual=True,
        priority="medium",
        queue="tier1",
        first_response_at=first_response_at,
    )
    EscalationLog.objects.filter(pk=log.pk).update(triggered_at=at)
    return log


def _transition(conversation, from_status, to_status, at) -> None:
    transition = Transition.objects.create(
        conversation=conversation, from_status=from_status, to_status=to_status
    )
    Transition.objects.filter(pk=transition.pk).update(created_at=at)


def build(*, acme_bot, globex_bot, sam, ian) -> dict:
    t0 = timezone.now().replace(microsecond=0) - timedelta(hours=3)
    s = timedelta(seconds=1)
    rule = EscalationRuleFactory(bot=acme_bot, trigger="human_request", name="Asks for a person")

    a = _conversation(
        acme_bot,
        name="Alice",
        t0=t0,
        status=Status.RESOLVED,
        resolution=Resolution.BOT,
        resolved_at=t0 + 300 * s,
        csat=5,
    )
    b = _conversation(
        acme_bot,
        name="Bruno",
        t0=t0,
        status=Status.RESOLVED,
        resolution=Resolution.AGENT,
        resolved_at=t0 + 600 * s,
        csat=3,
        assigned_agent=sam,
        handoff_at=t0 + 60 * s,
    )
    _escalation(b, at=t0 + 60 * s, rule=rule, first_response_at=t0 + 180 * s)
    _transition(b, Status.AI, Status.WAITING, t0 + 60 * s)
    _transition(b, Status.WAITING, Status.ACTIVE, t0 + 180 * s)
    _transition(b, Status.ACTIVE, Status.RESOLVED, t0 + 600 * s)
    c = _conversation(
        acme_bot,
        name="Chen",
        t0=t0,
        channel="api",
        status=Status.CLOSED,
        resolution=Resolution.ABANDONED,
    )
    d = _conversation(
        acme_bot,
        name="Dora",
        t0=t0,
        status=Status.WAITING,
        handoff_at=timezone.now() - timedelta(minutes=5),
    )
    _escalation(d, at=t0 + 30 * s)
    e = _conversation(
        acme_bot,
        name="Emil",
        t0=t0,
        status=Status.RESOLVED,
        resolution=Resolution.AGENT,
        resolved_at=t0 + 1200 * s,
        csat=4,
        assigned_agent=ian,
    )
    playground = _conversation(
        acme_bot,
        name="Tester",
        t0=t0,
        channel="playground",
        status=Status.RESOLVED,
        resolution=Resolution.BOT,
        resolved_at=t0 + 60 * s,
        csat=1,
    )
    globex_rule = EscalationRuleFactory(
        bot=globex_bot, trigger="keywords", name="Globex secret rule"
    )
    gus = _conversation(
        globex_bot,
        name="Gustav",
        t0=t0,
        status=Status.RESOLVED,
        resolution=Resolution.BOT,
        resolved_at=t0 + 60 * s,
        csat=1,
    )
    _escalation(gus, at=t0 + 10 * s, trigger="keywords", rule=globex_rule)
    return {
        "t0": t0,
        "rule": rule,
        "a": a,
        "b": b,
        "c": c,
        "d": d,
        "e": e,
        "playground": playground,
        "gus": gus,
    }
