"""Who sees which figure, the filters from a query string, the live "Now" tile and the
conversations behind a figure. The scene is analytics/tests/conftest.py's."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.utils import timezone

from analytics.selectors import Filters, conversations_for, dashboard, filters_from, now
from analytics.services import rollups_refresh
from bots.models import Membership
from bots.tests.factories import BotFactory
from conversations.models import Conversation

pytestmark = pytest.mark.django_db


def _membership(user, organization):
    return Membership.objects.get(user=user, organization=organization)


# --- permissions --------------------------------------------------------------------------------
def test_olga_sees_no_acme_figure(scene, outsider, globex, acme):
    olga = _membership(outsider, globex)
    with pytest.raises(PermissionDenied):
        dashboard(membership=olga, filters=scene["filters"])
    with pytest.raises(PermissionDenied):
        conversations_for(membership=olga, filters=scene["filters"])

    # Her own dashboard holds Gus's conversation and nothing of Acme's.
    hers = dashboard(membership=olga, filters=Filters(globex.pk, *_period(scene)))
    assert hers["totals"]["conversations"] == 1
    assert hers["totals"]["bot_resolved"] == 1
    assert hers["csat"]["all"]["distribution"] == [1, 0, 0, 0, 0]  # Gus's 1, not Acme's
    assert [b["name"] for b in hers["volume_by_bot"]] == ["Globex Helper"]
    assert hers["agents"] == []
    assert hers["escalation_reasons"] == []
    assert hers["quality"]["to_fix"] == []
    listed = conversations_for(membership=olga, filters=Filters(globex.pk, *_period(scene)))
    assert [c.pk for c in listed] == [scene["gus"].pk]


def _period(scene):
    return scene["filters"].start, scene["filters"].end


def test_agent_sees_only_own_row(scene, acme):
    sam = _membership(scene["sam"], acme)
    seen = dashboard(membership=sam, filters=scene["filters"])
    assert set(seen) == {"period", "agents"}
    assert [row["agent_id"] for row in seen["agents"]] == [scene["sam"].pk]
    assert seen["agents"][0]["handled"] == 2
    with pytest.raises(PermissionDenied):
        conversations_for(membership=sam, filters=scene["filters"])


def test_agent_without_work_sees_a_row_of_zeros(scene, acme):
    from bots.services import membership_add
    from bots.tests.factories import UserFactory

    newcomer = UserFactory(email="nia@acme.example", first_name="Nia")
    membership_add(organization=acme, user=newcomer, role="agent")
    seen = dashboard(membership=_membership(newcomer, acme), filters=scene["filters"])
    assert seen["agents"] == [
        {
            "agent_id": newcomer.pk,
            "name": "Nia",
            "handled": 0,
            "resolved": 0,
            "first_response_p50": None,
            "resolution_p50": None,
            "csat_avg": None,
            "csat_n": 0,
        }
    ]


def test_admin_sees_everything(scene, acme):
    ian = _membership(scene["ian"], acme)
    seen = dashboard(membership=ian, filters=scene["filters"])
    assert seen["totals"]["conversations"] == 6
    assert len(seen["agents"]) == 2


def test_filters_by_bot_and_channel(scene, acme, acme_bot):
    owner = scene["owner"]
    f = scene["filters"]
    api = dashboard(membership=owner, filters=Filters(acme.pk, f.start, f.end, channel="api"))
    assert api["totals"]["conversations"] == 1
    assert api["volume_by_channel"] == [{"channel": "api", "label": "API", "conversations": 1}]
    other = BotFactory(organization=acme, name="Other")
    none = dashboard(membership=owner, filters=Filters(acme.pk, f.start, f.end, bot_id=other.pk))
    assert none["totals"]["conversations"] == 0
    assert none["volume_by_bot"] == [{"bot_id": other.pk, "name": "Other", "conversations": 0}]
    mine = dashboard(membership=owner, filters=Filters(acme.pk, f.start, f.end, acme_bot.pk))
    assert mine["totals"]["conversations"] == 6


def test_playground_is_excluded_everywhere(scene, acme, acme_bot):
    owner = scene["owner"]
    seen = dashboard(membership=owner, filters=scene["filters"])
    assert seen["quality"]["thumbs_down"] == 2  # the playground's thumbs down is not there
    assert scene["playground"].pk not in [
        c.pk for c in conversations_for(membership=owner, filters=scene["filters"], limit=100)
    ]
    Conversation.objects.filter(pk=scene["playground"].pk).update(status="waiting")
    assert now(organization=acme)["waiting"] == 0


# --- the conversations behind a figure ----------------------------------------------------------
def test_conversations_for_reasons_and_outcomes(scene):
    owner, f = scene["owner"], scene["filters"]
    c1, c2, c3, c4, c5, c6 = scene["conversations"]

    def ids(**kwargs):
        return {c.pk for c in conversations_for(membership=owner, filters=f, **kwargs)}

    assert ids(trigger="human_request") == {c3.pk}
    assert ids(rule_id=scene["rule"].pk) == {c4.pk}
    assert ids(trigger="keywords", rule_id=scene["rule"].pk) == {c4.pk}
    assert ids(outcome="bot") == {c1.pk, c2.pk}
    assert ids(outcome="agent") == {c3.pk, c4.pk}
    assert ids(outcome="abandoned") == {c5.pk}
    assert ids(outcome="open") == {c6.pk}
    assert ids(outcome="escalated") == {c3.pk, c4.pk}
    newest = conversations_for(membership=owner, filters=f, limit=2)
    assert newest[0].pk == c6.pk  # 23:30, the others 10:00
    assert len(newest) == 2
    with pytest.raises(ValueError):
        conversations_for(membership=owner, filters=f, outcome="lost")


# --- Now ----------------------------------------------------------------------------------------
def test_now_is_live(acme, acme_bot, globex_bot, agent, owner):
    from analytics.tests.builders import conversation

    moment = timezone.now()
    for minutes_ago in (3, 12):
        waiting = conversation(acme_bot, at=moment, status="waiting")
        Conversation.objects.filter(pk=waiting.pk).update(
            handoff_at=moment - timedelta(minutes=minutes_ago)
        )
    conversation(globex_bot, at=moment, status="waiting")  # another organization's
    chatting = conversation(acme_bot, at=moment, status="ai")
    Conversation.objects.filter(pk=chatting.pk).update(last_message_at=moment)
    Membership.objects.filter(user=agent, organization=acme).update(availability="online")

    live = now(organization=acme)
    assert live["waiting"] == 2
    assert 12 * 60 <= live["longest_wait_seconds"] <= 12 * 60 + 30
    assert live["agents_online"] == 1
    assert live["with_bot"] == 1


def test_now_with_nobody_waiting(acme):
    assert now(organization=acme) == {
        "waiting": 0,
        "longest_wait_seconds": None,
        "agents_online": 0,
        "with_bot": 0,
    }


# --- filters ------------------------------------------------------------------------------------
def test_filters_from_ranges(acme, acme_bot):
    today = timezone.localdate()
    f = filters_from(organization=acme, params={})
    assert (f.start, f.end, f.days) == (today - timedelta(days=29), today, 30)
    assert filters_from(organization=acme, params={"range": "today"}).days == 1
    assert filters_from(organization=acme, params={"range": "7"}).start == today - timedelta(6)
    assert filters_from(organization=acme, params={"range": "90"}).days == 90
    assert filters_from(organization=acme, params={"range": 7, "bot": acme_bot.pk}).bot_id == (
        acme_bot.pk
    )
    f = filters_from(
        organization=acme,
        params=QueryDict(f"start=2026-01-01&end=2026-01-31&bot={acme_bot.pk}&channel=api"),
    )
    assert f == Filters(acme.pk, date(2026, 1, 1), date(2026, 1, 31), acme_bot.pk, "api")
    assert f.previous() == Filters(
        acme.pk, date(2025, 12, 1), date(2025, 12, 31), acme_bot.pk, "api"
    )


@pytest.mark.parametrize(
    "params",
    [
        {"range": "45"},
        {"range": "playground"},
        {"start": "2026-01-01"},
        {"end": "2026-01-01"},
        {"start": "2026-02-01", "end": "2026-01-01"},
        {"start": "yesterday", "end": "2026-01-01"},
        {"start": "2024-01-01", "end": "2025-01-01"},  # 367 days
        {"start": "0001-01-01", "end": "0001-01-02"},
        {"bot": "abc"},
        {"bot": "-1"},
        {"bot": "99999999999999999999999"},
        {"bot": "٣"},
        {"channel": "playground"},
        {"channel": "email"},
    ],
)
def test_filters_from_refuses(acme, params):
    with pytest.raises(ValueError) as refused:
        filters_from(organization=acme, params=params)
    assert str(refused.value).endswith(".")  # a sentence


def test_filters_from_refuses_another_organizations_bot(acme, globex_bot):
    with pytest.raises(ValueError):
        filters_from(organization=acme, params={"bot": str(globex_bot.pk)})


def test_dashboard_says_demo_data(acme, acme_bot, owner):
    from analytics.tests.builders import conversation
    from conversations.tests.factories import CustomerFactory

    demo = CustomerFactory(bot=acme_bot, visitor_id="demo-1", attributes={"demo": True})
    conversation(acme_bot, at=timezone.now(), customer=demo)
    rollups_refresh(organization_id=acme.pk)
    seen = dashboard(
        membership=_membership(owner, acme), filters=filters_from(organization=acme, params={})
    )
    assert seen["demo"] is True
    assert seen["previous"]["demo"] is False
