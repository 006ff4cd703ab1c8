"""Actions in Chromium, end to end, in the Playground (whose customer is the demo shop's signed-in
one) against the demo shop this live server serves itself, with seed_demo's two actions:

- offline, no LLM: "Where's my order 1234?" is answered from the demo shop through the result
  template, the widget having shown the action's progress;
- a refund (the model, a local OpenAI-compatible server, asks for start_refund) is confirmed
  on the card and its result posted;
- a refund cancelled on the card runs nothing;
- a missing order number is asked for, and the answer runs the lookup;
- a refund over the $50 limit is handed to a person, and the console shows its details;
- a slow endpoint: the widget shows the action's progress until the answer replaces it.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from chat.tests.test_widget_browser import ANSWER_MS, DEMO, Frames
from config.management.commands.seed_demo import demo_actions
from conversations.models import ActionCall, Conversation
from conversations.tests.openai_server import OpenAIServer, Reply
from conversations.tests.shop_server import ShopServer
from escalation.tests.test_console_browser import _sign_in
from knowledge import services as knowledge_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CLASSIFIED = Reply(tool={"name": "classify_message", "arguments": {"category": "answerable"}})


@pytest.fixture
def demo_shop_on(settings):
    """Before the live server forks: the demo shop served, and the Playground verified."""
    settings.DEMO_SHOP = True
    # The demo shop is this server, on 127.0.0.1; SITE_URL is not known before it starts.
    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = True
    settings.LLM_TIMEOUT = 10


@pytest.fixture
def llm_server():
    server = OpenAIServer()
    yield server
    server.stop()


@pytest.fixture
def action_bot(demo_shop_on, live_asgi_server, acme_bot):
    for name in ("acme-faq.csv", "acme-intents.json", "acme-warranty.md"):
        knowledge_services.source_upload(
            bot=acme_bot, filename=name, data=(DEMO / name).read_bytes(), sync_now=True
        )
    shop = f"{live_asgi_server}/demo/shop/api/{acme_bot.public_key}"
    for name, fields in demo_actions(shop).items():
        acme_bot.actions.create(name=name, **fields)
    return acme_bot


def _playground(browser_context, live_asgi_server, owner, bot):
    page = browser_context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    frames = Frames(page)
    _sign_in(page, live_asgi_server, owner.email)
    page.goto(f"{live_asgi_server}/o/acme/bots/{bot.slug}/playground/")
    expect(page.locator("handoff-chat")).to_have_attribute("data-state", "ready")
    return page, frames


def _ask(page, text):
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def _with_llm(bot, server):
    bot.llm_base_url, bot.llm_model, bot.llm_api_key = server.url, "acme-test", "sk-test"
    bot.save(update_fields=["llm_base_url", "llm_model", "llm_api_key"])


def test_where_is_my_order_is_answered_offline_from_the_demo_shop(
    demo_shop_on, live_asgi_server, browser_context, owner, action_bot
):
    page, frames = _playground(browser_context, live_asgi_server, owner, action_bot)

    _ask(page, "Where's my order 1234?")

    answer = page.locator("handoff-chat .msg.ai.complete").last
    expect(answer).to_contain_text(
        re.compile(r"Order 1234 \(Trail running shoes\) is shipped, arriving \w+"),
        timeout=ANSWER_MS,
    )
    progress = frames.of_type("tool_call")
    assert [f["state"] for f in progress] == ["running", "done"]
    assert progress[0]["progress"] == "Checking your order…"
    assert progress[1]["outcome"] == "ok" and progress[1]["arguments"] == {"order_id": "1234"}
    assert "/demo/shop/" not in str(frames.received)
    # The trace beside the chat lists the call for the member.
    expect(page.locator("#traces")).to_contain_text("lookup_order", timeout=10_000)
    assert page.errors == []


def test_a_refund_is_confirmed_on_the_card(
    demo_shop_on, live_asgi_server, browser_context, owner, action_bot, llm_server
):
    _with_llm(action_bot, llm_server)
    refund = {"name": "start_refund", "arguments": {"order_id": "1234", "amount": 20}}
    llm_server.script("tool", CLASSIFIED, Reply(tool=refund))
    page, frames = _playground(browser_context, live_asgi_server, owner, action_bot)

    _ask(page, "Please refund $20 on order 1234, the shoes pinch")

    card = page.get_by_role("group", name="Please confirm")
    expect(card).to_contain_text(
        "Refund $20.00 for order 1234 to the card you paid with.", timeout=ANSWER_MS
    )
    card.get_by_role("button", name="Confirm").click()

    result = page.locator("handoff-chat .msg.ai.complete").last
    expect(result).to_contain_text("refund of $20", timeout=20_000)
    expect(result).to_contain_text("has started")
    expect(card).to_contain_text("Confirmed")
    expect(card.get_by_role("button", name="Confirm")).to_have_count(0)
    call = ActionCall.objects.get(name="start_refund")
    assert (call.state, call.outcome) == ("done", "ok")
    assert [f["progress"] for f in frames.of_type("tool_call")][-2] == "Starting your refund…"
    assert page.errors == []


def test_a_refund_over_the_limit_is_handed_to_the_console_with_its_details(
    demo_shop_on, live_asgi_server, browser_context, chromium, owner, agent, action_bot, llm_server
):
    _with_llm(action_bot, llm_server)
    refund = {"name": "start_refund", "arguments": {"order_id": "1235", "amount": 80}}
    llm_server.script("tool", CLASSIFIED, Reply(tool=refund))
    page, _ = _playground(browser_context, live_asgi_server, owner, action_bot)

    _ask(page, "I want $80 back on order 1235")

    expect(page.locator("handoff-chat .msg.ai.complete").last).to_contain_text(
        "passing it to a person", timeout=ANSWER_MS
    )
    conversation = Conversation.objects.get(bot=action_bot)
    assert conversation.status == Conversation.Status.WAITING

    sam_context = chromium.new_context(viewport={"width": 1280, "height": 900})
    sam = sam_context.new_page()
    _sign_in(sam, live_asgi_server, agent.email)
    sam.goto(f"{live_asgi_server}/o/acme/console/c/{conversation.pk}/")
    requested = sam.locator(".package .action-request")
    expect(requested).to_contain_text("start_refund")
    expect(requested).to_contain_text("order_id 1235")
    expect(requested).to_contain_text("amount 80")
    expect(requested).to_contain_text(re.compile(r"above the .*50\.00"))
    expect(sam.locator(".package")).to_contain_text("An action is above its policy limit")
    sam_context.close()


def test_the_widget_shows_the_progress_while_a_slow_endpoint_answers(
    demo_shop_on, live_asgi_server, browser_context, owner, action_bot
):
    # The business's own server, slow, and it does not know the demo customer's order.
    business = ShopServer()
    business.delay = 2.0
    try:
        action_bot.actions.filter(name="lookup_order").update(
            url_template=business.url + "/orders/{order_id}"
        )
        page, _ = _playground(browser_context, live_asgi_server, owner, action_bot)

        _ask(page, "Where's my order 1234?")

        progress = page.locator("handoff-chat .progress")
        expect(progress).to_have_text("Checking your order…", timeout=ANSWER_MS)
        answer = page.locator("handoff-chat .msg.ai.complete").last
        expect(answer).to_contain_text("I couldn't find that on your account.", timeout=20_000)
        expect(progress).to_have_count(0)
        expect(answer.get_by_role("button", name="Talk to a person")).to_be_visible()
        assert len(business.requests) == 1
        assert page.errors == []
    finally:
        business.stop()


def test_a_refund_cancelled_on_the_card_runs_nothing(
    demo_shop_on, live_asgi_server, browser_context, owner, action_bot, llm_server
):
    _with_llm(action_bot, llm_server)
    refund = {"name": "start_refund", "arguments": {"order_id": "1235", "amount": 15}}
    llm_server.script("tool", CLASSIFIED, Reply(tool=refund))
    page, frames = _playground(browser_context, live_asgi_server, owner, action_bot)

    _ask(page, "Refund $15 on order 1235 please")

    card = page.get_by_role("group", name="Please confirm")
    expect(card).to_contain_text("Refund $15.00 for order 1235", timeout=ANSWER_MS)
    card.get_by_role("button", name="Cancel").click()

    expect(page.locator("handoff-chat .msg.ai.complete").last).to_contain_text(
        "OK, I won't do that.", timeout=10_000
    )
    expect(card).to_contain_text("Cancelled")
    expect(card.get_by_role("button", name="Confirm")).to_have_count(0)
    call = ActionCall.objects.get(name="start_refund")
    # Its outcome is still the card's: it never ran.
    assert (call.state, call.outcome) == ("cancelled", "needs_confirmation")
    # Only the turn's own call (which asked for the card) was announced: nothing ran after.
    assert [f["state"] for f in frames.of_type("tool_call")] == ["running", "done"]
    assert page.errors == []


def test_a_missing_order_number_is_asked_for_and_the_answer_runs_the_lookup(
    demo_shop_on, live_asgi_server, browser_context, owner, action_bot
):
    page, frames = _playground(browser_context, live_asgi_server, owner, action_bot)

    _ask(page, "where is my order")
    answers = page.locator("handoff-chat .msg.ai.complete")
    expect(answers.last).to_contain_text("What's your order number?", timeout=ANSWER_MS)

    _ask(page, "it's 1236")
    expect(answers.last).to_contain_text("Order 1236", timeout=ANSWER_MS)
    assert frames.of_type("tool_call")[-1]["arguments"] == {"order_id": "1236"}
    assert page.errors == []
