"""Conversation history pages: every member (agents too) reads them; anyone else gets a 404
for another organization's conversation or customer and finds none of its rows; a value that
does not parse is a clear 400, never a 500."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory, MessageFactory
from escalation.services import escalation_open

pytestmark = pytest.mark.django_db

TRACE = {
    "category": "answerable",
    "retrieved": [{"chunk_id": 999999, "score": 0.8123, "rank": 1}],
    "gate": {"passed": True, "bar": 0.42},
    "timings_ms": {"retrieve": 12.5, "answer": 340},
    "secret_looking_step": "<script>alert(1)</script>",
}


@pytest.fixture
def handed_off(carlas_chat, agent):
    question = MessageFactory(conversation=carlas_chat, text="Where is my parcel?")
    MessageFactory(
        conversation=carlas_chat,
        sender=Message.Sender.AI,
        text="It ships in 3 days.",
        reply_to=question,
        outcome=Message.Outcome.ANSWERED,
        confidence=0.71,
        trace=TRACE,
    )
    MessageFactory(conversation=carlas_chat, text="I want a person")
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked for a person")
    MessageFactory(
        conversation=carlas_chat,
        sender=Message.Sender.AGENT,
        agent=agent,
        internal=True,
        text="Checked the courier: delayed.",
    )
    carlas_chat.refresh_from_db()
    return carlas_chat


def _url(name, *args, org="acme"):
    return reverse(name, args=[org, *args])


@pytest.mark.parametrize("persona", ["owner", "admin_member", "agent"])
def test_every_member_may_read_the_history(client, persona, request, handed_off):
    client.force_login(request.getfixturevalue(persona))
    assert client.get(_url("history")).status_code == 200
    assert client.get(_url("history_conversation", handed_off.pk)).status_code == 200
    assert client.get(_url("history_customer", handed_off.customer_id)).status_code == 200


def test_the_anonymous_are_sent_to_sign_in(client, handed_off):
    for url in (
        _url("history"),
        _url("history_conversation", handed_off.pk),
        _url("history_customer", handed_off.customer_id),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_olga_of_globex_gets_404_for_acmes_pages(client, outsider, handed_off):
    client.force_login(outsider)
    assert client.get(_url("history")).status_code == 404
    # Acme's ids under her own organization's address: still nothing.
    assert client.get(_url("history_conversation", handed_off.pk, org="globex")).status_code == 404
    assert (
        client.get(_url("history_customer", handed_off.customer_id, org="globex")).status_code
        == 404
    )
    assert client.get(_url("history_conversation", handed_off.pk)).status_code == 404


def test_olga_finds_none_of_acmes_rows_by_search_or_filter(
    client, outsider, agent, handed_off, gus
):
    own = ConversationFactory(customer=gus)
    MessageFactory(conversation=own, text="my parcel is lost")
    client.force_login(outsider)
    for params in ({"q": "parcel"}, {"escalated": "yes"}, {}, {"q": "courier"}):
        html = client.get(_url("history", org="globex"), params).content.decode()
        assert f'data-conversation-id="{handed_off.pk}"' not in html
        assert "Carla" not in html
    html = client.get(_url("history", org="globex"), {"q": "parcel"}).content.decode()
    assert f'data-conversation-id="{own.pk}"' in html
    # Acme's agent as a filter value is not one of hers: refused, not a way to probe.
    response = client.get(_url("history", org="globex"), {"agent": str(agent.pk)})
    assert response.status_code == 400


def test_the_list_shows_customer_first_question_outcome_csat_agent_and_times(
    client, agent, handed_off
):
    Conversation.objects.filter(pk=handed_off.pk).update(
        csat=4, assigned_agent=agent, resolution="agent", status="resolved"
    )
    client.force_login(agent)
    html = client.get(_url("history"), {"q": "parcel"}).content.decode()
    for text in ("Carla", "Where is my parcel?", "Resolved by an agent", "4★", "Sam"):
        assert text in html
    assert reverse("history_conversation", args=["acme", handed_off.pk]) in html


def test_the_list_pages_with_an_older_link(client, agent, carla):
    for n in range(27):
        MessageFactory(conversation=ConversationFactory(customer=carla), text=f"q {n}")
    client.force_login(agent)
    first = client.get(_url("history")).content.decode()
    assert first.count("data-conversation-id=") == 25
    assert 'rel="next"' in first
    after = first.split('href="?after=')[1].split('"')[0]
    second = client.get(_url("history") + f"?after={after}").content.decode()
    assert second.count("data-conversation-id=") == 2
    assert 'rel="next"' not in second and "Newest" in second


@pytest.mark.parametrize(
    "params, message",
    [
        ({"after": "not-a-cursor"}, "page link is damaged"),
        ({"after": "%%%"}, "page link is damaged"),
        ({"start": "yesterday"}, "YYYY-MM-DD"),
        ({"end": "2026-02-30"}, "YYYY-MM-DD"),
        ({"status": "lost"}, "not one of the choices"),
        ({"bot": "abc"}, "pick one of this organization"),
    ],
)
def test_bad_input_is_a_clear_400(client, agent, handed_off, params, message):
    client.force_login(agent)
    response = client.get(_url("history"), params)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'role="alert"' in html
    # What was typed stays in the form.
    if "start" in params:
        assert 'value="yesterday"' in html


def test_the_conversation_page_tells_the_whole_story(client, agent, handed_off):
    client.force_login(agent)
    html = client.get(_url("history_conversation", handed_off.pk)).content.decode()
    # Transcript, the status change, the internal note.
    assert "Where is my parcel?" in html and "It ships in 3 days." in html
    assert "With the bot → Waiting for an agent" in html
    assert "Checked the courier: delayed." in html and "Note · Sam" in html
    # Escalation log and handoff package.
    assert "The customer asks for a person" in html and "Asked for a person" in html
    assert "Handoff package" in html
    # The bot answer's trace for people, and its raw JSON behind the toggle, escaped.
    assert "How the bot answered" in html
    assert "Timings (ms)" in html and "0.8123" in html and "(no longer in the knowledge)" in html
    assert "Details: the raw trace (JSON)" in html
    assert "&quot;category&quot;: &quot;answerable&quot;" in html
    assert "<script>alert(1)</script>" not in html
    # The customer panel.
    assert reverse("history_customer", args=["acme", handed_off.customer_id]) in html


def test_the_customer_page_shows_identity_attributes_and_past_conversations(client, agent, vera):
    vera.email = "vera@example.com"
    vera.attributes = {"plan": "Pro", "company": "Vera & Co"}
    vera.save()
    old = ConversationFactory(customer=vera, resolution="bot", status="closed")
    MessageFactory(conversation=old, text="How do I export invoices?")
    ConversationFactory(customer=vera)
    client.force_login(agent)
    html = client.get(_url("history_customer", vera.pk)).content.decode()
    for text in ("Vera", "verified", "user-42", "vera@example.com", "plan", "Pro", "Vera &amp; Co"):
        assert text in html
    assert "How do I export invoices?" in html and "Resolved by the bot" in html
    assert html.count("data-conversation-id=") == 2


def test_the_console_shows_the_same_customer_panel(client, agent, handed_off):
    earlier = ConversationFactory(customer=handed_off.customer, resolution="abandoned")
    MessageFactory(conversation=earlier, text="Do you ship to Norway?")
    client.force_login(agent)
    html = client.get(reverse("console_conversation", args=["acme", handed_off.pk])).content
    html = html.decode()
    assert 'class="customer-panel"' in html
    assert "Do you ship to Norway?" in html and "Abandoned" in html
    assert reverse("history_conversation", args=["acme", earlier.pk]) in html


def test_the_nav_links_to_the_history(client, agent, acme):
    client.force_login(agent)
    html = client.get(reverse("console", args=["acme"])).content.decode()
    assert f'href="{_url("history")}"' in html


@pytest.mark.parametrize("q", ['"', "&|!:*()", "the", "-", "a" * 500, "order:*"])
def test_any_search_text_is_answered_not_a_500(client, agent, handed_off, q):
    client.force_login(agent)
    response = client.get(_url("history"), {"q": q})
    assert response.status_code == 200
    assert 'role="alert"' not in response.content.decode()


def test_the_list_costs_the_same_queries_for_3_rows_as_for_25(
    client, agent, carla, django_assert_max_num_queries
):
    def make(n):
        for i in range(n):
            chat = ConversationFactory(customer=carla, assigned_agent=agent, csat=4)
            MessageFactory(conversation=chat, text=f"parcel {i}")

    client.force_login(agent)
    make(3)
    with CaptureQueriesContext(connection) as few:
        client.get(_url("history"), {"q": "parcel"})
    make(22)
    with django_assert_max_num_queries(len(few)):
        response = client.get(_url("history"), {"q": "parcel"})
    assert response.content.decode().count("data-conversation-id=") == 25


def test_a_search_shows_where_the_words_matched_escaped(client, agent, carla):
    chat = ConversationFactory(customer=carla)
    MessageFactory(conversation=chat, text="Hello there")
    MessageFactory(conversation=chat, text="<i>Tom & Jerry's</i> refunds never came back")
    client.force_login(agent)
    html = client.get(_url("history"), {"q": "refund"}).content.decode()
    assert "<mark>refunds</mark>" in html
    assert "Tom &amp; Jerry" in html and "<i>" not in html


def test_a_resolved_conversation_can_be_saved_as_an_faq_from_its_history_page(
    client, agent, handed_off
):
    client.force_login(agent)
    page = client.get(_url("history_conversation", handed_off.pk)).content.decode()
    assert "Save as an FAQ" not in page  # still open: nothing to learn from yet

    MessageFactory(conversation=handed_off, sender=Message.Sender.AGENT, agent=agent, text="Day 4.")
    Conversation.objects.filter(pk=handed_off.pk).update(status=Conversation.Status.RESOLVED)
    page = client.get(_url("history_conversation", handed_off.pk)).content.decode()
    assert "Save as an FAQ" in page
    assert reverse("console_save_faq", args=["acme", handed_off.pk]) in page
    assert 'value="Where is my parcel?"' in page and "Day 4.</textarea>" in page
