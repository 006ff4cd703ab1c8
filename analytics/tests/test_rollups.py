"""The rollups against the direct computation on random data, and their refresh: idempotent,
incremental (a rating given today to an old conversation updates its day), late commits seen,
concurrent runs taking turns, and the worker's schedule."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from analytics.figures import figures
from analytics.models import AgentDailyRollup, DailyRollup, RefreshState
from analytics.selectors import Filters, dashboard
from analytics.services import OVERLAP, rollups_refresh
from analytics.tests.builders import conversation, escalation, message, moves
from bots.models import Membership
from bots.tests.factories import BotFactory
from conversations.models import Conversation, Message, Transition
from escalation.models import EscalationLog
from escalation.tests.factories import EscalationRuleFactory

ENDINGS = [
    ("resolved", "bot"),
    ("closed", "bot"),
    ("resolved", "agent"),
    ("closed", "agent"),
    ("closed", "abandoned"),
    ("closed", ""),
    ("ai", ""),
    ("waiting", ""),
    ("active", ""),
    ("awaiting_customer", ""),
]
OUTCOMES = ["answered", "clarified", "deflected", "low_confidence", "handoff_proposed", "handoff"]
TRIGGERS = ["human_request", "keywords", "sentiment", "low_confidence", "api", "agent_takeover"]
STATUSES = ["ai", "waiting", "active", "awaiting_customer", "resolved"]
TITLES = ["Returns policy", "Shipping", "Warranty", "Opening hours"]


def _random_history(rng: random.Random, *, bots, agents, rules, days: int, n: int) -> None:
    """n conversations over the last `days` days: any ending, turns with any outcome and
    thumbs, agents' replies and notes, escalations (some answered), transitions."""
    now = timezone.now()
    for _ in range(n):
        bot = rng.choice(bots)
        status, resolution = rng.choice(ENDINGS)
        at = now - timedelta(days=rng.randrange(days), seconds=rng.randrange(86400))
        at = min(at, now - timedelta(hours=3))  # its last transition before the overlap
        c = conversation(
            bot,
            at=at,
            channel=rng.choice(["widget", "widget", "api", "playground"]),
            status=status,
            resolution=resolution,
            resolved_after=rng.randrange(30, 5000) if resolution else None,
            csat=rng.choice([None, 1, 2, 3, 4, 5]) if resolution != "abandoned" else None,
            agent=rng.choice(agents + [None]),
        )
        for _ in range(rng.randrange(4)):
            message(
                c,
                after=rng.randrange(1, 3000),
                outcome=rng.choice(OUTCOMES),
                feedback=rng.choice([None, None, 1, -1]),
                citations=[{"title": t} for t in rng.sample(TITLES, rng.randrange(3))],
                trace={"intent": {"tag": "refunds", "accepted": rng.random() < 0.5}}
                if rng.random() < 0.3
                else {},
            )
        for _ in range(rng.randrange(3) if agents else 0):
            message(
                c,
                after=rng.randrange(1, 3000),
                sender="agent",
                agent=rng.choice(agents),
                internal=rng.random() < 0.2,
            )
        for _ in range(rng.choice([0, 0, 1, 2])):
            escalation(
                c,
                after=rng.randrange(1, 2000),
                trigger=rng.choice(TRIGGERS),
                rule=rng.choice(rules + [None]),
                responded_after=rng.choice([None, rng.randrange(1, 900)]),
            )
        steps, after = [], 0
        for _ in range(rng.randrange(5)):
            after += rng.randrange(1, 1200)
            steps.append((after, rng.choice(STATUSES)))
        moves(c, *steps)


@pytest.fixture
def history(acme, acme_bot, globex_bot, owner, agent, admin_member, outsider):
    rng = random.Random(14)
    bots = [acme_bot, BotFactory(organization=acme, name="Acme Sales")]
    rules = [EscalationRuleFactory(bot=acme_bot, name="Refunds")]
    _random_history(rng, bots=bots, agents=[agent, admin_member], rules=rules, days=6, n=70)
    _random_history(rng, bots=[globex_bot], agents=[outsider], rules=[], days=6, n=10)
    return {"bots": bots, "owner": Membership.objects.get(user=owner, organization=acme)}


def _filters_to_check(acme, bots) -> list[Filters]:
    today = timezone.localdate()
    week = (today - timedelta(days=6), today)
    return [
        Filters(acme.pk, *week),
        Filters(acme.pk, *week, bot_id=bots[1].pk),
        Filters(acme.pk, *week, channel="api"),
        Filters(acme.pk, *week, bot_id=bots[0].pk, channel="widget"),
        Filters(acme.pk, today - timedelta(days=3), today - timedelta(days=2)),
        Filters(acme.pk, today, today),
    ]


def _agree(owner, filters: Filters) -> None:
    from_rollups = dashboard(membership=owner, filters=filters)
    direct = figures(filters)
    for key, value in direct.items():
        assert from_rollups[key] == value, (key, filters)
    assert from_rollups["previous"]["totals"] == figures(filters.previous())["totals"]


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_rollups_agree_with_direct_computation_on_random_data(settings, zone, acme, history):
    settings.TIME_ZONE = zone  # days and hours of the heatmap are local
    rollups_refresh(full=True)
    assert DailyRollup.objects.filter(organization=acme).count() > 10
    for filters in _filters_to_check(acme, history["bots"]):
        _agree(history["owner"], filters)


def _snapshot(organization) -> list[tuple]:
    daily = DailyRollup.objects.filter(organization=organization).order_by("day", "bot", "channel")
    agents = AgentDailyRollup.objects.filter(organization=organization).order_by(
        "day", "agent", "bot", "channel"
    )
    fields = lambda model: [f.name for f in model._meta.fields if f.name != "id"]  # noqa: E731
    return list(daily.values_list(*fields(DailyRollup))) + list(
        agents.values_list(*fields(AgentDailyRollup))
    )


def _age_everything(seconds_ago: int) -> None:
    """Make every source row look changed long ago, as an old history is."""
    old = timezone.now() - timedelta(seconds=seconds_ago)
    Conversation.objects.update(updated_at=old)
    Message.objects.update(updated_at=old)
    Transition.objects.filter(created_at__gt=old).update(created_at=old)
    EscalationLog.objects.filter(triggered_at__gt=old).update(triggered_at=old)


@pytest.mark.django_db
def test_refresh_is_idempotent(acme, history):
    first = rollups_refresh(organization_id=acme.pk)
    days = DailyRollup.objects.filter(organization=acme).values("day").distinct().count()
    assert first.days == days >= 5  # the first run reads everything
    before = _snapshot(acme)
    again = rollups_refresh(organization_id=acme.pk)  # everything changed within the overlap
    assert again.days == days
    assert _snapshot(acme) == before
    rollups_refresh(organization_id=acme.pk, full=True)
    assert _snapshot(acme) == before


@pytest.mark.django_db
def test_refresh_is_incremental(acme, history):
    from conversations.services import conversation_rate

    old = conversation(
        history["bots"][0],
        at=timezone.now() - timedelta(days=4),
        status="resolved",
        resolution="bot",
        resolved_after=60,
    )
    rollups_refresh(organization_id=acme.pk)
    _age_everything(2 * OVERLAP.total_seconds())
    assert rollups_refresh(organization_id=acme.pk).days == 0
    assert RefreshState.objects.get(pk=acme.pk).days == 0

    day = timezone.localtime(old.created_at).date()
    row = DailyRollup.objects.get(organization=acme, day=day, bot=old.bot, channel=old.channel)
    rated = row.csat_bot[4]
    conversation_rate(conversation=old, score=5)

    assert rollups_refresh(organization_id=acme.pk).days == 1  # that day only
    row = DailyRollup.objects.get(organization=acme, day=day, bot=old.bot, channel=old.channel)
    assert row.csat_bot[4] == rated + 1
    filters = Filters(acme.pk, day, day)
    assert (
        dashboard(membership=history["owner"], filters=filters)["csat"] == figures(filters)["csat"]
    )


@pytest.mark.django_db
def test_refresh_sees_late_commits(acme, history):
    """A transaction that stamped its rows just before the last run started and committed
    after it: its change is inside the overlap, so the next run recomputes its day."""
    rollups_refresh(organization_id=acme.pk)
    _age_everything(2 * OVERLAP.total_seconds())
    watermark = RefreshState.objects.get(pk=acme.pk).watermark
    turn = Message.objects.filter(
        conversation__bot__organization=acme, sender="ai", feedback__isnull=True
    ).exclude(conversation__channel="playground")[0]
    Message.objects.filter(pk=turn.pk).update(
        feedback=1, updated_at=watermark - timedelta(seconds=30)
    )
    assert rollups_refresh(organization_id=acme.pk).days == 1
    day = timezone.localtime(turn.conversation.created_at).date()
    filters = Filters(acme.pk, day, day)
    assert (
        dashboard(membership=history["owner"], filters=filters)["quality"]
        == figures(filters)["quality"]
    )


@pytest.mark.django_db
def test_escalation_response_alone_updates_its_day(acme, acme_bot, agent, owner):
    """first_response_at is written with .update(), which stamps no updated_at. A conversation
    that started two days ago, escalated an hour ago, answered now."""
    moment = timezone.now() - timedelta(days=2)
    c = conversation(acme_bot, at=moment, status="waiting")
    log = escalation(c, after=2 * 86400 - 3600)
    rollups_refresh(organization_id=acme.pk)
    _age_everything(2 * OVERLAP.total_seconds())
    Conversation.objects.filter(pk=c.pk).update(updated_at=moment)
    answered = timezone.now()
    EscalationLog.objects.filter(pk=log.pk).update(first_response_at=answered)
    assert rollups_refresh(organization_id=acme.pk).days == 1
    day = timezone.localtime(moment).date()
    seen = dashboard(
        membership=Membership.objects.get(user=owner, organization=acme),
        filters=Filters(acme.pk, day, day),
    )
    wait = (answered - log.triggered_at) // timedelta(seconds=1)
    assert seen["times"]["first_response"] == {"p50": wait, "p90": wait, "n": 1}


@pytest.mark.django_db
def test_deleted_conversations_go_with_a_full_refresh(acme, history):
    rollups_refresh(organization_id=acme.pk)
    Conversation.objects.filter(bot__organization=acme).delete()
    rollups_refresh(organization_id=acme.pk, full=True)
    assert not DailyRollup.objects.filter(organization=acme).exists()
    assert not AgentDailyRollup.objects.filter(organization=acme).exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_take_turns(acme, acme_bot):
    """A refresh waits for the one holding the organization's state row, then runs."""
    conversation(acme_bot, at=timezone.now() - timedelta(days=1))
    rollups_refresh(organization_id=acme.pk)
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def holder():
        try:
            with transaction.atomic():
                RefreshState.objects.select_for_update().get(pk=acme.pk)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    def second():
        try:
            rollups_refresh(organization_id=acme.pk)
            done.set()
        finally:
            connection.close()

    threads = [threading.Thread(target=holder), threading.Thread(target=second)]
    threads[0].start()
    assert held.wait(10)
    # The schedule's run does not wait: it skips the organization.
    skipped = rollups_refresh(organization_id=acme.pk, wait=False)
    assert (skipped.skipped, skipped.organizations, skipped.days) == (1, 0, 0)
    threads[1].start()
    time.sleep(0.5)
    assert not done.is_set()  # waiting for the lock
    release.set()
    for thread in threads:
        thread.join(10)
    assert done.is_set()
    assert DailyRollup.objects.filter(organization=acme).count() == 1


@pytest.mark.django_db
def test_task_and_its_schedule(acme, acme_bot):
    from django_q.models import Schedule

    from analytics.tasks import analytics_rollup

    conversation(acme_bot, at=timezone.now())
    assert analytics_rollup()["days"] == 1
    schedule = Schedule.objects.get(name="analytics: refresh the rollups")
    assert (schedule.func, schedule.schedule_type, schedule.minutes, schedule.repeats) == (
        "analytics.tasks.analytics_rollup",
        "I",
        1,
        -1,
    )
