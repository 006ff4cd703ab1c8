"""How a chat ends, in Chromium: Carla's question is answered, she says Yes, rates it with a
comment; or she says No and is offered a person (README, "How a conversation ends")."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from chat.tests import test_widget_browser as widget_browser
from conversations.models import Conversation, Message

shop = widget_browser.shop
demo_bot = widget_browser.demo_bot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTION = "How long is the warranty on Acme products?"


def _eventually(check, page, tries=100):
    for _ in range(tries):
        if check():
            return
        page.wait_for_timeout(100)
    assert check()


def _answered(browser_context, shop, live_asgi_server, bot):
    page, _frames = widget_browser._open_shop(browser_context, shop, live_asgi_server, bot)
    widget_browser._launcher(page).click()
    chat = widget_browser._chat(page)
    widget_browser._ask(page, QUESTION)
    answer = widget_browser._bot_answers(page).last
    expect(answer).to_contain_text("two-year warranty", timeout=widget_browser.ANSWER_MS)
    return page, chat


def test_carla_says_yes_and_rates_the_bot_resolved_chat(
    live_asgi_server, browser_context, shop, demo_bot
):
    page, chat = _answered(browser_context, shop, live_asgi_server, demo_bot)
    asked = chat.get_by_role("group", name="Did that answer your question?")
    expect(asked).to_be_visible()
    expect(chat.get_by_role("status")).to_have_text(re.compile("Did that answer your question?"))
    conversation = Conversation.objects.get(bot=demo_bot)
    assert conversation.status == Conversation.Status.AWAITING

    # One tap, by keyboard: the button takes focus and Enter presses it.
    yes = asked.get_by_role("button", name="Yes")
    yes.focus()
    page.keyboard.press("Enter")
    expect(asked).to_have_count(0)

    stars = chat.get_by_role("radiogroup", name="How did we do?")
    expect(stars).to_be_in_viewport()
    expect(chat.get_by_role("status")).to_have_text(re.compile(r"resolved\. How did we do\?"))
    _eventually(lambda: Conversation.objects.get(pk=conversation.pk).resolution == "bot", page)
    chat.get_by_label("Anything to add? (optional)").fill("Clear and quick.")
    stars.get_by_role("radio", name="5 stars").click()
    expect(chat).to_contain_text("Thank you!")
    _eventually(lambda: Conversation.objects.get(pk=conversation.pk).csat == 5, page)
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.RESOLVED
    assert conversation.csat_comment == "Clear and quick."
    assert Message.objects.get(sender="ai").confirmed is True

    # Asked once: a reload shows the ending without the stars.
    page.reload()  # the chat stays open across it
    expect(chat.get_by_role("button", name="Start a new conversation")).to_be_visible()
    expect(chat.get_by_role("radiogroup", name="How did we do?")).to_have_count(0)
    expect(chat.get_by_role("group", name="Did that answer your question?")).to_have_count(0)
    assert page.errors == []


def test_carla_says_no_and_is_offered_a_person(live_asgi_server, browser_context, shop, demo_bot):
    page, chat = _answered(browser_context, shop, live_asgi_server, demo_bot)
    asked = chat.get_by_role("group", name="Did that answer your question?")
    asked.get_by_role("button", name="No").click()
    expect(asked).to_have_count(0)
    offer = chat.locator(".msg.system").filter(has_text="Would you like to talk to a person?")
    expect(offer).to_be_visible()
    conversation = Conversation.objects.get(bot=demo_bot)
    assert conversation.status == Conversation.Status.AWAITING  # her choice, not yet a handoff

    offer.get_by_role("button", name="Talk to a person").click()
    expect(chat).to_contain_text("Connecting you with a person…")
    _eventually(lambda: Conversation.objects.get(pk=conversation.pk).status == "waiting", page)
    assert Message.objects.get(sender="ai").confirmed is False
    assert page.errors == []
