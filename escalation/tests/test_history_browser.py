"""Conversation history in Chromium, as an agent uses it: search the messages, narrow by a
filter, open a conversation, read how the bot answered (and the raw trace behind its toggle),
then open the customer. Globex's conversation with the same words never shows."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from bots.tests.factories import PASSWORD
from conversations.models import Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from escalation.services import escalation_open

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TRACE = {
    "category": "answerable",
    "retrieved": [{"chunk_id": 424242, "score": 0.8123, "rank": 1}],
    "gate": {"passed": True, "bar": 0.42},
    "timings_ms": {"retrieve": 12.5, "answer": 340},
}


@pytest.fixture
def stories(acme_bot, globex_bot):
    carla = CustomerFactory(
        bot=acme_bot,
        name="Carla",
        visitor_id="carla-history-1",
        external_id="shop-user-7",
        email="carla@example.com",
        attributes={"plan": "Gold"},
    )
    parcel = ConversationFactory(customer=carla)
    question = MessageFactory(conversation=parcel, text="My parcel never arrived")
    Message.objects.create(
        conversation=parcel,
        sender="ai",
        reply_to=question,
        state="complete",
        outcome="answered",
        text="Parcels arrive within 5 days.",
        trace=TRACE,
    )
    escalation_open(conversation=parcel, trigger="human_request", reason="Asked for a person")
    earlier = ConversationFactory(customer=carla, resolution="bot", status="closed")
    MessageFactory(conversation=earlier, text="Do you gift wrap a parcel?")
    dan = CustomerFactory(bot=acme_bot, name="Dan", visitor_id="dan-history-1")
    MessageFactory(conversation=ConversationFactory(customer=dan), text="Invoice please")
    gus = CustomerFactory(bot=globex_bot, name="Gus", visitor_id="gus-history-1")
    MessageFactory(conversation=ConversationFactory(customer=gus), text="My parcel is late")
    return {"parcel": parcel, "earlier": earlier, "carla": carla}


def test_an_agent_searches_filters_opens_a_conversation_its_trace_and_the_customer(
    live_asgi_server, browser_context, agent, stories
):
    page = browser_context.new_page()
    page.goto(f"{live_asgi_server}/accounts/login/")
    page.get_by_label("Email").fill(agent.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/o/acme/$"))

    page.get_by_role("link", name="Conversations", exact=True).click()
    results = page.get_by_role("region", name="Results")
    expect(results.locator("tbody tr")).to_have_count(3)

    page.get_by_label("Search the messages").fill("parcels")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(results.locator("tbody tr")).to_have_count(2)  # both of Carla's, stemmed
    expect(results).not_to_contain_text("Gus")
    expect(results).not_to_contain_text("Dan")

    page.get_by_label("Escalated").select_option("yes")
    page.get_by_role("button", name="Apply filters").click()
    expect(results.locator("tbody tr")).to_have_count(1)
    row = results.locator(f'tr[data-conversation-id="{stories["parcel"].pk}"]')
    expect(row).to_contain_text("My parcel never arrived")
    expect(page.get_by_label("Search the messages")).to_have_value("parcels")

    row.get_by_role("link", name="Carla").click()
    expect(page).to_have_url(re.compile(rf"/o/acme/conversations/{stories['parcel'].pk}/$"))
    expect(page.locator(".history-transcript")).to_contain_text("Parcels arrive within 5 days.")
    expect(page.locator(".history-transcript")).to_contain_text(
        "With the bot → Waiting for an agent"
    )
    expect(page.get_by_role("heading", name="Escalation log")).to_be_visible()

    trace = page.locator(f"#trace-{stories['parcel'].messages.get(sender='ai').pk}")
    expect(trace).to_be_hidden()
    page.get_by_text("How the bot answered").click()
    expect(trace).to_be_visible()
    expect(trace).to_contain_text("Timings (ms)")
    expect(trace).to_contain_text("0.8123")
    raw = trace.locator(".trace-raw pre")
    expect(raw).to_be_hidden()
    trace.get_by_text("Details: the raw trace (JSON)").click()
    expect(raw).to_be_visible()
    expect(raw).to_contain_text('"category": "answerable"')

    panel = page.locator(".customer-panel")
    expect(panel).to_contain_text("verified")
    expect(panel).to_contain_text("Do you gift wrap a parcel?")
    panel.get_by_role("link", name="Carla", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/o/acme/customers/{stories['carla'].pk}/$"))
    expect(page.locator(".customer-facts")).to_contain_text("shop-user-7")
    expect(page.locator(".customer-facts")).to_contain_text("Gold")
    expect(page.locator(".customer-facts")).to_contain_text("carla@example.com")
    expect(page.locator("tbody tr")).to_have_count(2)
    expect(page.locator("tbody")).to_contain_text("Resolved by the bot")
