"""Knowledge gaps (analytics/gaps.py): which questions, how they group, rank and trend, when
one is answered, and who sees them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from analytics import gap_questions, gaps, selectors, tasks
from analytics.models import GapQuestion
from analytics.selectors import Filters
from analytics.tests.gapbuilders import asked, handed_off
from bots.models import Membership
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from knowledge import services as knowledge_services

pytestmark = pytest.mark.django_db

CANADA = ("Do you ship to Canada?", "Can you deliver to Toronto?", "Do you deliver to Canada?")
GIFT = "Can I buy a gift card?"


def filters(organization, days: int = 30, bot=None) -> Filters:
    today = timezone.localdate()
    return Filters(organization.pk, today - timedelta(days=days - 1), today, bot and bot.pk)


def gaps_section(client, url):
    """What htmx asks for once the analytics page is there."""
    return client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="knowledge-gaps")


def texts(report) -> list[list[str]]:
    return [sorted(q.text for q in g.questions) for g in report.gaps]


def test_it_groups_questions_by_meaning_and_keeps_other_topics_apart(acme, shop):
    for text in CANADA:
        asked(shop, text)
    asked(shop, GIFT)

    report = gaps.report(filters=filters(acme))

    assert texts(report) == [sorted(CANADA), [GIFT]]
    canada = report.gaps[0]
    assert canada.customers == 3
    assert canada.examples[0] in CANADA and len(canada.examples) == 3
    bar, how = report.thresholds[shop.pk]
    assert how == "knowledge" and 0 < bar < 1


def test_each_kind_of_weak_answer_is_a_gap_question_and_a_good_one_is_not(acme, shop):
    asked(shop, "Do you ship to Canada?")  # out of scope
    asked(shop, "Can I pay in instalments?", outcome="low_confidence", category="question")
    asked(shop, "asdf qwer", outcome="clarified", category="nonsense")
    asked(shop, "Is the blender dishwasher safe?", outcome="answered", category="q", feedback=-1)
    asked(shop, "Do you price match?", outcome="answered", category="q", confirmed=False)
    answered_then_person = asked(shop, "Can I pick up in store?", outcome="answered", category="q")
    handed_off(answered_then_person)
    asked(shop, "How long does shipping take?", outcome="answered", category="q", feedback=1)
    wanted_a_person = asked(shop, "I want a human", outcome="handoff", category="human")
    handed_off(wanted_a_person, after=0)

    found = gap_questions.questions(**gaps._period(filters(acme)))

    kinds = {q.text: q.kinds for q in found.values()}
    assert kinds == {
        "Do you ship to Canada?": {"out_of_scope"},
        "Can I pay in instalments?": {"hedged"},
        "asdf qwer": {"clarifying"},
        "Is the blender dishwasher safe?": {"thumbs_down"},
        "Do you price match?": {"not_answered"},
        "Can I pick up in store?": {"handed_off"},
    }


def test_a_conversation_marked_by_an_agent_gives_its_question(acme, shop):
    missed = asked(shop, "Can I pick up in store?", outcome="answered", category="q")
    missed.conversation.bot_missed = True
    missed.conversation.save(update_fields=["bot_missed"])

    (question,) = gap_questions.questions(**gaps._period(filters(acme))).values()

    assert question.text == "Can I pick up in store?"
    assert question.kinds == {"bot_missed"}


def test_playground_other_bots_filters_and_other_periods_are_left_out(acme, shop, gus):
    asked(shop, "Do you ship to Canada?", channel="playground")
    asked(shop, "Do you ship to Canada?", days_ago=45)  # before the 30 days
    asked(gus.bot, "Do you ship to Canada?", customer=gus)  # Globex's

    assert gaps.report(filters=filters(acme)).gaps == []


def test_the_trend_counts_the_previous_periods_questions_of_the_same_group(acme, shop):
    for text in CANADA:
        asked(shop, text)
    asked(shop, "Do you ship to Canada?", days_ago=40)  # previous 30 days
    asked(shop, GIFT, days_ago=40)  # a gap of the previous period only

    report = gaps.report(filters=filters(acme))

    assert [len(g.questions) for g in report.gaps] == [3]
    (canada,) = gaps.present(report.gaps, organization_slug="acme")
    assert (canada["size"], canada["previous"], canada["trend"]) == (3, 1, 2)


def test_marked_gaps_come_first_then_the_most_customers(acme, shop, carla):
    # Carla asks about Canada three times: one customer. Gift cards: two customers.
    for text in CANADA:
        asked(shop, text, customer=carla)
    asked(shop, GIFT)
    asked(shop, "Do you sell gift cards?")
    # One agent-marked question about warranties abroad, asked once.
    asked(shop, "Does the warranty cover me in Japan?", bot_missed=True)

    report = gaps.report(filters=filters(acme))

    ranked = [(g.examples[0], g.bot_missed, g.customers, len(g.questions)) for g in report.gaps]
    assert ranked[0] == ("Does the warranty cover me in Japan?", 1, 1, 1)
    assert [r[2:] for r in ranked[1:]] == [(2, 2), (1, 3)]


def test_a_gap_disappears_once_knowledge_added_after_it_answers_it(acme, shop):
    for text in CANADA:
        asked(shop, text)
    asked(shop, GIFT)
    assert len(gaps.report(filters=filters(acme)).gaps) == 2

    faq = (
        b"question,answer\n"
        b"Do you ship to Canada?,Yes: we ship to Canada in 5 to 8 business days; duties are "
        b"included at checkout.\n"
    )
    knowledge_services.source_upload(bot=shop, filename="team.csv", data=faq, sync_now=True)

    report = gaps.report(filters=filters(acme))
    assert texts(report) == [[GIFT]]
    assert report.answered == 3


def test_knowledge_older_than_the_question_does_not_close_it(acme, shop):
    # The bot answered from its shipping FAQ and the customer said it did not help: the same
    # FAQ scoring high again says nothing new.
    asked(shop, "How long does shipping take?", outcome="answered", category="q", feedback=-1)

    report = gaps.report(filters=filters(acme))

    assert texts(report) == [["How long does shipping take?"]]
    assert report.answered == 0


def test_questions_are_embedded_once(acme, shop, django_assert_max_num_queries):
    for text in CANADA:
        asked(shop, text)
    gaps.report(filters=filters(acme))
    assert GapQuestion.objects.count() == 3

    stored = dict(GapQuestion.objects.values_list("message_id", "embedding_model"))
    gaps.report(filters=filters(acme))

    assert dict(GapQuestion.objects.values_list("message_id", "embedding_model")) == stored


def test_only_owners_and_admins_of_the_organization_read_the_gaps(
    acme, shop, owner, admin_member, agent, outsider
):
    asked(shop, "Do you ship to Canada?")
    period = filters(acme)
    for user in (owner, admin_member):
        membership = Membership.objects.get(user=user, organization=acme)
        assert len(selectors.gaps(membership=membership, filters=period).gaps) == 1
    with pytest.raises(PermissionDenied):
        selectors.gaps(membership=Membership.objects.get(user=agent), filters=period)
    with pytest.raises(PermissionDenied):
        selectors.gaps(membership=Membership.objects.get(user=outsider), filters=period)


def test_the_analytics_page_shows_the_gaps_with_links_to_their_conversations(
    client, acme, shop, owner
):
    questions = [asked(shop, text) for text in CANADA]
    client.force_login(owner)

    page = client.get("/o/acme/analytics/?range=7").content.decode()
    # The page holds the section empty, and asks for it once loaded, with the same filters.
    assert 'id="knowledge-gaps"' in page and 'hx-trigger="load"' in page
    assert 'hx-get="/o/acme/analytics/?range=7"' in page and "Canada" not in page

    page = gaps_section(client, "/o/acme/analytics/?range=7").content.decode()
    assert 'id="knowledge-gaps"' in page and "hx-trigger" not in page
    assert "Do you ship to Canada?" in page
    for q in questions:
        assert gaps.conversation_url("acme", q.conversation_id) in page


def test_an_agent_sees_no_gaps_section(client, acme, shop, agent):
    asked(shop, "Do you ship to Canada?")
    client.force_login(agent)

    page = client.get("/o/acme/analytics/").content.decode()

    assert "knowledge-gaps" not in page and "Canada" not in page
    assert gaps_section(client, "/o/acme/analytics/").status_code == 403


def test_olga_never_sees_acmes_gaps(client, acme, shop, outsider, gus):
    asked(shop, "Do you ship to Canada?")
    asked(gus.bot, "Do you sell spare parts?", customer=gus)
    client.force_login(outsider)

    assert client.get("/o/acme/analytics/").status_code == 404
    assert gaps_section(client, "/o/acme/analytics/").status_code == 404
    own = gaps_section(client, "/o/globex/analytics/").content.decode()
    assert "Do you sell spare parts?" in own and "Canada" not in own
    # Acme's bot as a filter of Globex's page is refused, not shown.
    foreign = gaps_section(client, f"/o/globex/analytics/?bot={shop.pk}")
    assert foreign.status_code == 400 and "Canada" not in foreign.content.decode()


def test_one_customer_asking_twice_is_one_customer(acme, shop):
    carla = CustomerFactory(bot=shop, name="Carla")
    asked(shop, "Do you ship to Canada?", customer=carla)
    asked(shop, "Do you ship to Canada?", customer=carla)

    (gap,) = gaps.report(filters=filters(acme)).gaps

    assert (gap.customers, len(gap.questions), gap.examples) == (1, 2, ["Do you ship to Canada?"])


def test_the_worker_embeds_new_gap_questions_ahead_of_the_page(acme, shop, gus):
    recent = [asked(shop, text) for text in CANADA]
    old = asked(shop, GIFT, days_ago=5)  # before the worker's 48 hours: the page embeds it
    asked(gus.bot, "Do you sell spare parts?", customer=gus)

    assert tasks.analytics_gaps_embed() == {"embedded": 4}
    stored = set(GapQuestion.objects.values_list("message_id", flat=True))
    assert {q.pk for q in recent} <= stored and old.pk not in stored
    assert tasks.analytics_gaps_embed() == {"embedded": 0}


def test_the_page_keeps_the_gaps_a_while_but_new_knowledge_shows_at_once(acme, shop, owner):
    asked(shop, "Do you ship to Canada?")
    membership = Membership.objects.get(user=owner)
    period = filters(acme)
    assert len(selectors.gaps(membership=membership, filters=period).gaps) == 1

    asked(shop, GIFT)  # a new weak answer waits for the cache (five minutes)
    assert len(selectors.gaps(membership=membership, filters=period).gaps) == 1

    faq = b"question,answer\nDo you ship to Canada?,Yes: we ship to Canada in 5 to 8 days.\n"
    knowledge_services.source_upload(bot=shop, filename="team.csv", data=faq, sync_now=True)
    assert texts(selectors.gaps(membership=membership, filters=period)) == [[GIFT]]


def test_a_marked_conversation_where_the_bot_never_answered_gives_its_first_message(
    acme, shop, carla
):
    conversation = ConversationFactory(customer=carla, bot_missed=True)
    MessageFactory(conversation=conversation, sender="user", text="I need a person about my kayak")
    MessageFactory(conversation=conversation, sender="user", text="hello?")

    (question,) = gap_questions.questions(**gaps._period(filters(acme))).values()

    assert (question.text, question.kinds) == ("I need a person about my kayak", {"bot_missed"})
