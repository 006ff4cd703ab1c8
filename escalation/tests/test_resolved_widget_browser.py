"""The end of a chat in Chromium: the customer rates an answer, asks for a person, Sam resolves
it in the console; the widget shows the stars in view and says so, stops offering a person, and
"Start a new conversation" starts one (issue 11, item 5)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from chat.tests import test_widget_browser as widget_browser
from conversations.models import Conversation, Message
from escalation.tests.test_console_browser import _open_console

shop = widget_browser.shop
demo_bot = widget_browser.demo_bot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _eventually(check, page, tries=100):
    for _ in range(tries):
        if check():
            return
        page.wait_for_timeout(100)
    assert check()


def _inside(inner: dict, outer: dict) -> bool:
    return (
        inner["y"] >= outer["y"] - 1
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1
    )


def test_a_resolved_chat_shows_its_stars_in_view_and_starts_a_new_conversation(
    live_asgi_server, browser_context, chromium, shop, demo_bot, agent
):
    page, _frames = widget_browser._open_shop(browser_context, shop, live_asgi_server, demo_bot)
    widget_browser._launcher(page).click()
    chat = widget_browser._chat(page)
    widget_browser._ask(page, "How long is the warranty on Acme products?")
    answer = widget_browser._bot_answers(page).last
    expect(answer).to_contain_text("two-year warranty", timeout=widget_browser.ANSWER_MS)

    # Thumbs up on the answer: pressed, and stored.
    helpful = answer.get_by_role("button", name="Helpful", exact=True)
    helpful.click()
    expect(helpful).to_have_attribute("aria-pressed", "true")
    expect(answer.get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "false"
    )
    _eventually(
        lambda: Message.objects.filter(sender="ai", feedback=1).count() == 1,
        page,
    )

    # Opened now: a second browser while the server loads its embedding model slows both.
    sam_context, sam = _open_console(chromium, live_asgi_server, agent)
    person = chat.locator("header").get_by_role("button", name="Talk to a person")
    person.click()
    expect(chat).to_contain_text("Connecting you with a person…")
    conversation = Conversation.objects.get(bot=demo_bot)

    # Sam answers at length, then resolves, while the customer has scrolled back up to read.
    sam.locator(f'#queue .queue-item[data-conversation-id="{conversation.pk}"]').get_by_role(
        "link"
    ).click()
    pane = sam.locator("#pane")
    pane.get_by_role("button", name="Claim").click()
    expect(chat).to_contain_text("Sam joined the chat")
    steps = "\n".join(f"{n}. Then this, and check that it worked." for n in range(1, 13))
    pane.get_by_label(re.compile("Reply to")).fill(f"Here is what to do:\n{steps}")
    pane.get_by_role("button", name="Send").click()
    expect(chat.locator(".msg.agent")).to_contain_text("12. Then this")
    log = chat.get_by_role("log", name="Messages")
    log.evaluate("el => { el.scrollTop = 0; }")
    assert log.evaluate("el => el.scrollHeight > el.clientHeight + 100")
    pane.get_by_role("button", name="Resolve").click()

    # The stars come into view by themselves (the test does not scroll), and are announced.
    stars = chat.get_by_role("radiogroup", name="How did we do?")
    expect(stars).to_be_in_viewport()
    assert _inside(stars.bounding_box(), log.bounding_box())
    expect(stars.get_by_role("radio")).to_have_count(5)
    expect(chat.get_by_role("status")).to_have_text(re.compile(r"resolved\. How did we do\?"))
    # No more "Talk to a person" in a finished chat: a new conversation instead.
    expect(person).to_be_hidden()
    again = chat.get_by_role("button", name="Start a new conversation")
    expect(again).to_be_in_viewport()

    # Rated with the keyboard: one tab stop, arrows between the stars.
    stars.get_by_role("radio", name="1 star").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(stars.get_by_role("radio", name="4 stars")).to_be_focused()
    page.keyboard.press("Enter")
    expect(chat).to_contain_text("Thank you!")
    expect(chat.get_by_role("status")).to_have_text("Thank you for your rating.")
    _eventually(lambda: Conversation.objects.get(pk=conversation.pk).csat == 4, page)

    # A fresh start: the old messages go, a person may be asked for again, and the next
    # message lands in a new conversation; the old one stays resolved.
    again.click()
    expect(chat.locator(".msg.agent")).to_have_count(0)
    expect(chat.locator(".msg.user")).to_have_count(0)
    expect(person).to_be_visible()
    expect(page.get_by_label("Your message")).to_be_focused()
    widget_browser._ask(page, "How long is the warranty on Acme products?")
    expect(widget_browser._bot_answers(page).last).to_contain_text(
        "two-year warranty", timeout=widget_browser.ANSWER_MS
    )
    expect(widget_browser._bot_answers(page)).to_have_count(1)
    conversations = list(Conversation.objects.filter(bot=demo_bot).order_by("pk"))
    # The new one awaits the customer after the bot's answer.
    assert [c.status for c in conversations] == ["resolved", "awaiting_customer"]
    assert conversations[0].csat == 4
    assert list(conversations[1].messages.values_list("sender", flat=True)) == ["user", "ai"]

    # A reload keeps the new conversation, without the old one's ending.
    page.reload()
    expect(chat.locator(".msg.user")).to_have_count(1)
    expect(chat.get_by_role("button", name="Start a new conversation")).to_have_count(0)
    assert page.errors == [] and sam.errors == []
    sam_context.close()
