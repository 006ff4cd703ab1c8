"""demo_history: a generated history for the demo organization, consistent with the product's
own rules, idempotent, and removable without touching anything else."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from analytics import selectors
from analytics.management.commands._demo_script import TOPICS
from bots.demo_accounts import DEMO_PEOPLE
from bots.models import Membership
from bots.services import membership_add
from bots.tests.factories import UserFactory
from conversations.models import Conversation, Customer, Message, Transition
from conversations.tests.factories import ConversationFactory, CustomerFactory
from escalation.models import EscalationLog
from escalation.services import escalation_rules_create_defaults
from knowledge.models import Document, KnowledgeSource

pytestmark = pytest.mark.django_db

DAYS = 3
DEMO_FILES = settings.BASE_DIR / "bots" / "demo"


def demo_titles() -> list[str]:
    """The titles the demo knowledge's documents get when seed_demo syncs bots/demo/ (the FAQ's
    questions, the intents' humanised tags, the article's front matter)."""
    with (DEMO_FILES / "acme-faq.csv").open() as f:
        titles = [row["question"] for row in csv.DictReader(f)]
    intents = json.loads((DEMO_FILES / "acme-intents.json").read_text())["intents"]
    titles += [i["tag"].replace("_", " ").capitalize() for i in intents]
    article = (DEMO_FILES / "acme-warranty.md").read_text()
    titles.append(re.search(r"^title: (.+)$", article, re.M).group(1))
    return titles


@pytest.fixture
def demo(acme, acme_bot, settings, tmp_path):
    """Acme as seed_demo leaves it, without the embedding model: its people, the bot's default
    rules, and documents titled as the demo knowledge's."""
    settings.DATA_DIR = tmp_path  # where --remove leaves its marker: one per test
    for email, name, role in DEMO_PEOPLE:
        membership_add(organization=acme, user=UserFactory(email=email, name=name), role=role)
    escalation_rules_create_defaults(bot=acme_bot)
    source = KnowledgeSource.objects.create(bot=acme_bot, name="demo")
    for title in demo_titles():
        Document.objects.create(
            bot=acme_bot, source=source, external_id=title, title=title, checksum="-"
        )
    return acme_bot


def demo_conversations(bot):
    return Conversation.objects.filter(bot=bot, customer__attributes__demo=True)


def generate(days=DAYS, **options):
    call_command("demo_history", days=days, seed=7, **options)


def window_start():
    zone = ZoneInfo(settings.TIME_ZONE)
    today = timezone.now().astimezone(zone).date()
    return datetime.combine(today - timedelta(days=DAYS), time(0), tzinfo=zone), today


def test_every_topic_cites_documents_of_the_demo_knowledge():
    titles = set(demo_titles())
    for topic in TOPICS:
        assert set(topic.sources) <= titles, topic.sources


def test_it_generates_the_volume_and_mix_of_a_support_team(demo, capsys):
    # A whole week: the mix depends on which weekdays the window holds (weekends are quieter),
    # and three days generated on a Saturday held no clarifying question at all.
    week = 7
    generate(days=week)

    conversations = demo_conversations(demo)
    count = conversations.count()
    assert 20 * week <= count <= 65 * week
    assert f"Generated {count} demo conversations" in capsys.readouterr().out
    customers = Customer.objects.filter(bot=demo)
    assert customers.count() == count
    assert all(c.attributes == {"demo": True} for c in customers)
    assert all(c.visitor_id.startswith("demo-") for c in customers)

    resolutions = {r: conversations.filter(resolution=r).count() for r in ("bot", "agent")}
    resolutions["abandoned"] = conversations.filter(resolution="abandoned").count()
    assert all(n > 0 for n in resolutions.values()), resolutions
    # The bot resolves most, as a working demo bot would.
    assert resolutions["bot"] > resolutions["agent"] and resolutions["bot"] > count * 0.4
    assert set(conversations.values_list("channel", flat=True)) == {"widget", "api"}
    assert conversations.filter(reopened_count__gt=0).exists()

    logs = EscalationLog.objects.filter(conversation__bot=demo)
    assert 0.15 * count < logs.count() < 0.45 * count
    assert {log.rule.bot_id for log in logs.exclude(rule=None)} == {demo.pk}
    assert len(set(logs.exclude(rule=None).values_list("rule__name", flat=True))) >= 4
    # A rule that fired on a message says so as escalation/rules.py writes it.
    fired = logs.filter(manual=False, trigger__in=["human_request", "category", "sentiment"])
    assert fired.exists()
    assert all(log.reason.startswith(f"{log.rule.name}: ") for log in fired)

    for who in ("bot", "agent"):
        rated = conversations.filter(resolution=who).exclude(csat=None)
        assert rated.exists()
        assert all(1 <= c.csat <= 5 for c in rated)
        # A rating is given after the resolution it rates; a reopened conversation keeps it
        # (conversations/services/lifecycle.py) while its resolved_at moves to the new one.
        assert all(c.csat_at >= c.resolved_at for c in rated.filter(reopened_count=0))
    assert conversations.exclude(csat_comment="").exists()

    answers = Message.objects.filter(conversation__bot=demo, sender="ai")
    outcomes = set(answers.values_list("outcome", flat=True))
    assert {"answered", "handoff", "handoff_proposed", "clarified", "deflected"} <= outcomes
    cited = {c["document_id"] for m in answers for c in m.citations}
    assert cited and cited <= set(Document.objects.filter(bot=demo).values_list("id", flat=True))
    assert answers.filter(confirmed=True).exists() and answers.filter(confirmed=False).exists()
    assert answers.filter(feedback=1).exists() and answers.filter(feedback=-1).exists()


def test_the_conversations_are_consistent_and_inside_the_window(demo):
    generate()
    start, today = window_start()
    now = timezone.now()
    conversations = demo_conversations(demo).prefetch_related(
        "transitions", "messages", "escalations"
    )
    assert not demo_conversations(demo).filter(channel="playground").exists()
    days = set()
    for c in conversations:
        local_day = c.created_at.astimezone(start.tzinfo).date()
        days.add(local_day)
        assert start <= c.created_at and local_day < today
        ended = c.status in ("resolved", "closed")
        assert bool(c.resolution) == ended and (c.resolved_at is not None) == ended
        assert c.created_at < c.resolved_at <= c.updated_at <= now
        if c.resolution == "agent":
            assert c.assigned_agent is not None and c.escalations.exists()
        if c.resolution == "bot":
            assert c.assigned_agent is None
        # The transitions chain, from the bot to the conversation's status, in time order.
        steps = list(c.transitions.all())
        assert steps[0].from_status == "ai" and steps[-1].to_status == c.status
        for before, after in zip(steps, steps[1:], strict=False):
            assert before.to_status == after.from_status
            assert before.created_at <= after.created_at
        assert c.created_at <= steps[0].created_at and steps[-1].created_at <= now
        times = [m.created_at for m in c.messages.all()]
        assert times == sorted(times) and c.created_at <= times[0] and times[-1] <= now
        for log in c.escalations.all():
            assert c.created_at <= log.triggered_at <= log.first_response_at <= log.resolved_at
            assert log.resolved_at <= now
    assert len(days) == DAYS  # every day of the window has conversations


def test_a_second_run_replaces_the_history_instead_of_doubling_it(demo, capsys):
    generate()
    first = sorted(demo_conversations(demo).values_list("created_at", "resolution"))
    generate()

    assert sorted(demo_conversations(demo).values_list("created_at", "resolution")) == first
    assert Customer.objects.filter(bot=demo).count() == len(first)
    assert f"replacing {len(first)} generated before" in capsys.readouterr().out


def test_make_run_adds_it_once_and_never_after_a_removal(demo, capsys):
    # Only Playground tests so far: no history yet.
    ConversationFactory(customer=CustomerFactory(bot=demo), channel="playground")
    call_command("demo_history", days=DAYS, if_new=True)
    count = demo_conversations(demo).count()
    assert count > 0

    call_command("demo_history", days=DAYS, if_new=True)
    assert demo_conversations(demo).count() == count
    assert "has conversations already" in capsys.readouterr().out

    call_command("demo_history", remove=True)
    call_command("demo_history", days=DAYS, if_new=True)
    assert not demo_conversations(demo).exists()
    assert "removed earlier" in capsys.readouterr().out


def test_remove_deletes_the_demo_data_and_nothing_else(demo, carla, globex_bot, capsys):
    real = ConversationFactory(customer=carla)
    Message.objects.create(conversation=real, sender="user", text="Where is my order?")
    # Another organization's customer marked as demo is not the demo organization's.
    other = ConversationFactory(
        customer=CustomerFactory(bot=globex_bot, visitor_id="demo-x", attributes={"demo": True})
    )
    generate()
    count = demo_conversations(demo).count()
    customers = Customer.objects.filter(bot=demo, attributes__demo=True).count()
    capsys.readouterr()

    call_command("demo_history", remove=True)

    out = capsys.readouterr().out
    assert f"Removed {count} demo conversations of {customers} demo customers" in out
    assert not Customer.objects.filter(bot=demo, attributes__demo=True).exists()
    assert list(Conversation.objects.order_by("pk")) == [real, other]
    assert real.messages.count() == 1 and Transition.objects.count() == 0
    assert not EscalationLog.objects.exists()
    # The rollups were recomputed: the dashboard holds the real conversation alone.
    board = dashboard_of(demo.organization)
    assert board["demo"] is False and board["totals"]["conversations"] == 1


def test_generating_leaves_other_organizations_alone(demo, outsider, globex_bot):
    gus = ConversationFactory(customer=CustomerFactory(bot=globex_bot, name="Gus"))
    generate()
    assert list(Conversation.objects.filter(bot__organization=globex_bot.organization)) == [gus]
    assert not Customer.objects.filter(bot=globex_bot).exclude(pk=gus.customer_id).exists()


def dashboard_of(organization):
    owner = Membership.objects.get(organization=organization, role="owner")
    filters = selectors.filters_from(organization=organization, params={"range": "7"})
    return selectors.dashboard(membership=owner, filters=filters)


def test_the_dashboard_shows_it_as_demo_data(demo, acme):
    generate()
    board = dashboard_of(acme)

    assert board["demo"] is True
    totals = board["totals"]
    assert totals["conversations"] == demo_conversations(demo).count()
    assert totals["bot_resolved"] and totals["agent_resolved"] and totals["abandoned"]
    assert 0.4 < totals["ai_resolution_rate"] < 0.8
    assert board["csat"]["bot"]["n"] and board["csat"]["agent"]["n"]


def test_it_needs_the_demo_organization(db, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("demo_history", days=DAYS)


def test_days_and_hours_are_the_instance_time_zone(demo, settings):
    settings.TIME_ZONE = "America/Los_Angeles"
    generate()
    start, today = window_start()
    zone = ZoneInfo("America/Los_Angeles")
    starts = [c.created_at.astimezone(zone) for c in demo_conversations(demo)]
    assert {s.date() for s in starts} == {today - timedelta(days=n) for n in range(1, DAYS + 1)}
    # Office hours are busier than the night, in local time.
    office = sum(1 for s in starts if 9 <= s.hour < 17)
    night = sum(1 for s in starts if s.hour < 6)
    assert office > 4 * night
