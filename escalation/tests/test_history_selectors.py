"""Conversation history reads: full-text search over every message, each filter, keyset pages
without a duplicate or a gap, and another organization's rows never among the results."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.http import QueryDict
from django.utils import timezone

from bots.models import Membership
from conversations.models import Conversation, Message, Transition
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from escalation import history_selectors as history
from escalation.services import escalation_open

pytestmark = pytest.mark.django_db


def _membership(user):
    return Membership.objects.select_related("organization").get(user=user)


def _filters(membership, **params):
    query = QueryDict(mutable=True)
    query.update(params)
    return history.history_filters_from(membership=membership, params=query)


def _ids(membership, cursor="", size=25, **params):
    filters = _filters(membership, **params)
    assert filters.errors == []
    rows, _next = history.history_list(
        membership=membership, filters=filters, cursor=cursor, size=size
    )
    return [c.pk for c in rows]


def _chat(customer, *texts, **fields):
    conversation = ConversationFactory(customer=customer, **fields)
    for text in texts:
        MessageFactory(conversation=conversation, text=text)
    return conversation


def test_it_finds_conversations_by_words_of_any_message_stemmed(owner, carla, dan):
    refund = _chat(carla, "Hello", "I would like refunds for both parcels")
    shipping = _chat(dan, "Where is my parcel?")
    MessageFactory(conversation=shipping, sender=Message.Sender.AI, text="It ships today.")
    me = _membership(owner)

    assert _ids(me, q="refund") == [refund.pk]  # "refunds" stems to "refund"
    assert _ids(me, q="parcel") == [shipping.pk, refund.pk]
    assert _ids(me, q="shipping") == [shipping.pk]  # the bot's words count too
    assert _ids(me, q='"like refunds"') == [refund.pk]  # a phrase: these words, in this order
    assert _ids(me, q='"refunds like"') == []
    assert _ids(me, q="parcel -refund") == [shipping.pk]
    assert _ids(me, q="nothing-like-this") == []


def test_the_search_uses_the_full_text_index(owner, carla):
    _chat(carla, "refund please")
    query = history.message_matches("refund").only("pk").query
    with connection.cursor() as cursor:
        # A tiny table: without these the planner may walk the primary key and filter.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        sql, params = query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "message_search" in plan


def test_a_member_never_finds_another_organizations_conversations(owner, outsider, carla, gus):
    acme = _chat(carla, "my invoice is wrong")
    globex = _chat(gus, "my invoice is wrong")

    assert _ids(_membership(outsider), q="invoice") == [globex.pk]
    assert _ids(_membership(owner), q="invoice") == [acme.pk]
    assert _ids(_membership(outsider)) == [globex.pk]


def test_each_filter_narrows_the_list(owner, agent, admin_member, carla, dan, vera, acme_bot):
    from bots.tests.factories import BotFactory

    other_bot = BotFactory(organization=acme_bot.organization, name="Sales", slug="sales")
    stranger = CustomerFactory(bot=other_bot, name="Stan")
    by_bot = _chat(
        carla,
        "thanks",
        status=Conversation.Status.RESOLVED,
        resolution="bot",
        csat=5,
        channel="api",
    )
    by_agent = _chat(
        dan,
        "help",
        status=Conversation.Status.CLOSED,
        resolution="agent",
        assigned_agent=agent,
        queue="tier2",
        priority="urgent",
        csat=2,
    )
    Transition.objects.create(
        conversation=by_agent, from_status="active", to_status="resolved", actor=admin_member
    )
    open_one = _chat(vera, "hi", priority="high")
    escalation_open(conversation=open_one, trigger="human_request", reason="Asked for a person")
    sales = _chat(stranger, "quote")
    Conversation.objects.filter(pk=sales.pk).update(created_at=timezone.now() - timedelta(days=10))
    me = _membership(owner)
    everything = {by_bot.pk, by_agent.pk, open_one.pk, sales.pk}
    assert set(_ids(me)) == everything

    assert _ids(me, bot=str(other_bot.pk)) == [sales.pk]
    assert _ids(me, status="closed") == [by_agent.pk]
    assert _ids(me, outcome="bot") == [by_bot.pk]
    assert _ids(me, outcome="agent") == [by_agent.pk]
    assert set(_ids(me, outcome="open")) == {open_one.pk, sales.pk}
    assert _ids(me, resolved_by=str(admin_member.pk)) == [by_agent.pk]
    assert _ids(me, resolved_by=str(agent.pk)) == []
    assert _ids(me, agent=str(agent.pk)) == [by_agent.pk]
    assert _ids(me, queue="tier2") == [by_agent.pk]
    assert _ids(me, priority="urgent") == [by_agent.pk]
    assert _ids(me, csat="2") == [by_agent.pk]
    assert set(_ids(me, csat="none")) == {open_one.pk, sales.pk}
    assert _ids(me, escalated="yes") == [open_one.pk]
    assert set(_ids(me, escalated="no")) == everything - {open_one.pk}
    assert _ids(me, channel="api") == [by_bot.pk]
    today = timezone.localdate()
    ten_days_ago = (today - timedelta(days=10)).isoformat()
    assert _ids(me, start=ten_days_ago, end=ten_days_ago) == [sales.pk]
    assert set(_ids(me, start=today.isoformat())) == everything - {sales.pk}
    # Filters combine, with the search too.
    assert _ids(me, q="help", outcome="agent", priority="urgent") == [by_agent.pk]
    assert _ids(me, q="help", outcome="bot") == []


def test_bad_filter_values_are_reported_not_guessed(owner, outsider, globex_bot):
    me = _membership(owner)
    filters = _filters(
        me,
        status="nope",
        bot=str(globex_bot.pk),  # another organization's bot
        agent=str(outsider.pk),  # not a member here
        start="2026-13-01",
        csat="7",
        escalated="maybe",
    )
    assert len(filters.errors) == 6
    assert any("YYYY-MM-DD" in e for e in filters.errors)
    assert filters.bot_id is None and filters.agent is None and filters.start is None
    reversed_range = _filters(me, start="2026-02-01", end="2026-01-01")
    assert reversed_range.errors == ["From must be on or before To."]


@pytest.mark.parametrize(
    "window, index_ids",
    [
        (400, 20_000),  # every conversation in the first window
        (3, 20_000),  # rare words: the index lists the rest
        (3, 2),  # the index's list too long: PostgreSQL walks on
    ],
)
def test_keyset_pages_have_no_duplicate_and_no_gap(
    owner, carla, dan, monkeypatch, window, index_ids
):
    monkeypatch.setattr(history, "WINDOW", window)
    monkeypatch.setattr(history, "INDEX_IDS", index_ids)
    now = timezone.now()
    made = []
    for n in range(23):
        # Every third one is about parcels: a window of 3 never fills a page of 4.
        topic = "parcels" if n % 3 == 0 else "invoices"
        made.append(_chat(carla if n % 2 else dan, f"question {n} about {topic}"))
    # Five share one instant: the id breaks the tie.
    same = now - timedelta(hours=1)
    Conversation.objects.filter(pk__in=[c.pk for c in made[5:10]]).update(created_at=same)
    for n, c in enumerate(made[10:]):
        Conversation.objects.filter(pk=c.pk).update(created_at=now - timedelta(minutes=n))
    me = _membership(owner)
    newest_first = Conversation.objects.order_by("-created_at", "-id")
    parcels = {m.conversation_id for m in Message.objects.filter(text__contains="parcels")}
    for params in ({}, {"q": "parcels"}, {"q": "parcels", "channel": "widget"}):
        expected = [c.pk for c in newest_first if not params or c.pk in parcels]
        seen, cursor, pages = [], "", 0
        while True:
            filters = _filters(me, **params)
            rows, cursor = history.history_list(
                membership=me, filters=filters, cursor=cursor, size=4
            )
            seen += [c.pk for c in rows]
            pages += 1
            if not cursor:
                break
        assert seen == expected
        assert pages == -(-len(expected) // 4)  # 4 a page


def test_a_damaged_cursor_is_a_clear_error(owner):
    me = _membership(owner)
    for cursor in ("garbage!", "Zm9vfGJhcg", history.cursor_encode.__name__):
        with pytest.raises(history.BadCursor, match="page link is damaged"):
            history.history_list(membership=me, filters=_filters(me), cursor=cursor)


def test_each_row_carries_the_customers_first_question(owner, carla):
    chat = _chat(carla)
    MessageFactory(conversation=chat, sender=Message.Sender.AI, text="Hi! How can I help?")
    MessageFactory(conversation=chat, text="Where is my order?")
    MessageFactory(conversation=chat, text="It is late")
    me = _membership(owner)
    rows, _ = history.history_list(membership=me, filters=_filters(me))
    assert rows[0].first_question == "Where is my order?"


def test_customer_conversations_are_the_customers_only_newest_first(carla, dan):
    older = _chat(carla, "first")
    newer = _chat(carla, "second")
    _chat(dan, "not hers")
    Conversation.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=1))
    rows = history.customer_conversations(customer=carla)
    assert [c.pk for c in rows] == [newer.pk, older.pk]
    assert rows[0].first_question == "second"
    assert [c.pk for c in history.customer_conversations(customer=carla, exclude_id=newer.pk)] == [
        older.pk
    ]


def test_the_timeline_interleaves_messages_and_status_changes(carlas_chat, agent):
    first = MessageFactory(conversation=carlas_chat, text="I want a person")
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    MessageFactory(conversation=carlas_chat, text="hello?")
    kinds = [i["kind"] for i in history.history_timeline(conversation=carlas_chat)]
    assert kinds[0] == "message" and "transition" in kinds
    items = history.history_timeline(conversation=carlas_chat)
    assert items[0]["message"].pk == first.pk
    assert items[-1]["kind"] == "message" and items[-1]["message"].text == "hello?"
