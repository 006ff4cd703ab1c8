"""The console's layout in Chromium, at the sizes agents work at: the reply box stays in view
beside a long transcript, the open conversation is marked in whichever list holds it (also
after the lists are pushed again), and Transfer never defaults to where the chat already is."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from chat.tests.test_outcomes_browser import _eventually
from conversations.models import Conversation
from conversations.tests.factories import ConversationFactory, MessageFactory
from escalation.services import conversation_claim, escalation_open
from escalation.tests import test_console_browser as console_browser

# The shop's page on another origin, as the console's other browser tests use it.
shop = console_browser.shop
_customer_chat = console_browser._customer_chat
_sign_in = console_browser._sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Status = Conversation.Status
LAPTOP = {"width": 1366, "height": 768}
DESKTOP = {"width": 1200, "height": 800}


def _console(chromium, base, user, viewport):
    context = chromium.new_context(viewport=viewport)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    _sign_in(page, base, user.email)
    return context, page


def _long_chat(customer, agent):
    """Forty messages, handed off with a full package, and claimed by `agent`."""
    conversation = ConversationFactory(customer=customer)
    for i in range(20):
        MessageFactory(conversation=conversation, text=f"Question {i}: my order\nis still late.")
        MessageFactory(
            conversation=conversation,
            sender="ai",
            text=f"Answer {i}: orders ship within two days; tracking follows by e-mail.",
        )
    escalation_open(conversation=conversation, trigger="human_request", reason="Asked for a person")
    conversation_claim(conversation=conversation, agent=agent)
    return conversation


def _in_view(page, locator) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return (
        box is not None
        and box["y"] >= 0
        and box["x"] >= 0
        and box["y"] + box["height"] <= size["height"]
        and box["x"] + box["width"] <= size["width"]
    )


def _shown_in(scroller, locator) -> bool:
    """`locator` is inside the part of `scroller` on screen, not scrolled away in it."""
    outer, inner = scroller.bounding_box(), locator.bounding_box()
    return (
        inner["y"] >= outer["y"] - 1
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1
    )


# The test process's pushes reach no live page (another process): recorded, not attempted.
@pytest.mark.usefixtures("broadcasts")
@pytest.mark.parametrize("viewport", [DESKTOP, LAPTOP], ids=["1200x800", "1366x768"])
def test_the_reply_box_stays_in_view_beside_a_long_transcript(
    live_asgi_server, chromium, agent, carla, viewport
):
    conversation = _long_chat(carla, agent)
    context, sam = _console(chromium, live_asgi_server, agent, viewport)
    sam.get_by_role("link", name="Console").click()
    sam.locator(f'#mine li[data-conversation-id="{conversation.pk}"]').get_by_role("link").click()
    pane = sam.locator("#pane")
    transcript = pane.locator(f"#transcript-{conversation.pk}")
    expect(transcript.locator("li.msg").last).to_contain_text("Sam joined the chat")

    # Nothing scrolled: the page itself does not move; the transcript scrolls inside.
    assert sam.evaluate("window.scrollY") == 0
    assert sam.evaluate("document.documentElement.scrollHeight <= window.innerHeight")
    assert transcript.evaluate("el => el.scrollHeight > el.clientHeight")
    for control in (
        pane.get_by_label(re.compile("Reply to")),
        pane.get_by_role("button", name="Send"),
        pane.get_by_label("Internal note (colleagues only)"),
        pane.get_by_role("button", name="Add note"),
        pane.get_by_role("button", name="Resolve"),
        pane.locator(".package summary"),
    ):
        assert _in_view(sam, control), control
    # The transcript has the room left, and its latest message is the one in view.
    assert transcript.bounding_box()["height"] >= viewport["height"] / 3
    assert _shown_in(transcript, transcript.locator("li.msg").last)

    # Still so after a reply re-renders the pane.
    pane.get_by_label(re.compile("Reply to")).fill("Sam here. Let me check the tracking.")
    pane.get_by_role("button", name="Send").click()
    expect(transcript.locator("li.msg.agent").last).to_contain_text("check the tracking")
    # The reply shows first through its push, in the pane the reply's answer then replaces: the
    # new pane scrolls to its latest message once it has loaded, a moment later.
    _eventually(lambda: _shown_in(transcript, transcript.locator("li.msg").last), sam)
    assert _in_view(sam, pane.get_by_label(re.compile("Reply to")))
    assert sam.evaluate("window.scrollY") == 0
    assert sam.errors == []
    context.close()


def _current(page, list_id):
    return page.locator(f'#{list_id} [aria-current="true"]')


def _item(page, list_id, conversation):
    return page.locator(f'#{list_id} li[data-conversation-id="{conversation.pk}"]')


def test_the_open_conversation_is_marked_in_every_list_also_after_they_are_pushed_again(
    live_asgi_server, browser_context, chromium, shop, acme_bot, agent, carla, dan, vera
):
    acme_bot.allowed_origins = [shop.origin]
    acme_bot.save(update_fields=["allowed_origins"])
    now = timezone.now()
    waiting = ConversationFactory(customer=carla, status=Status.WAITING, handoff_at=now)
    tier2 = ConversationFactory(customer=dan, status=Status.WAITING, handoff_at=now, queue="tier2")
    with_bot = ConversationFactory(customer=vera, last_message_at=now)
    context, sam = _console(chromium, live_asgi_server, agent, DESKTOP)
    sam.get_by_role("link", name="Console").click()
    expect(sam.locator("#console")).to_have_attribute("data-live", "on")
    for list_id in ("queue", "mine", "with-bot"):
        expect(_current(sam, list_id)).to_have_count(0)

    _item(sam, "with-bot", with_bot).get_by_role("link").click()
    expect(sam.locator("#pane")).to_have_attribute("data-conversation-id", str(with_bot.pk))
    expect(_current(sam, "with-bot")).to_have_text("Vera")
    expect(_current(sam, "queue")).to_have_count(0)
    # Seen, not only announced: the open row looks different from its neighbours.
    marked = _item(sam, "with-bot", with_bot)
    expect(marked).to_have_class(re.compile(r"\bcurrent\b"))
    unmarked = _item(sam, "queue", waiting)
    assert marked.evaluate("el => getComputedStyle(el).backgroundColor") != unmarked.evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )

    # The Tier 2 one: marked in the queue, and Transfer does not offer Tier 2 as the default.
    _item(sam, "queue", tier2).get_by_role("link").click()
    expect(_current(sam, "queue")).to_have_text("Dan")
    expect(_current(sam, "with-bot")).to_have_count(0)
    menu = sam.locator("#pane").get_by_label("Transfer to")
    expect(menu).to_have_value("")
    assert menu.evaluate("el => el.selectedOptions[0].textContent") == "Transfer to…"
    expect(menu.locator('option[value="queue:tier2"]')).to_be_disabled()
    expect(menu.locator('option[value="queue:tier2"]')).to_have_text("Tier 2 (waiting here)")
    sam.locator("#pane").get_by_role("button", name="Transfer").click()
    assert menu.evaluate("el => el.validity.valueMissing")  # nothing sent: pick one first
    expect(sam.locator("#pane .pane-error")).to_have_count(0)
    tier2.refresh_from_db()
    assert (tier2.status, tier2.queue) == (Status.WAITING, "tier2")

    # A customer asks for a person: the queue is pushed anew, Dan's row still marked.
    customer, chat = _customer_chat(browser_context, shop, live_asgi_server, acme_bot)
    chat.get_by_role("button", name="Talk to a person").click()
    expect(sam.locator("#queue .queue-item")).to_have_count(3)
    expect(_current(sam, "queue")).to_have_text("Dan")

    # Sam claims it: it leaves the queue (pushed) and shows in Mine (re-rendered), marked there.
    sam.locator("#pane").get_by_role("button", name="Claim").click()
    expect(_item(sam, "mine", tier2)).to_be_visible()
    expect(_current(sam, "mine")).to_have_text("Dan")
    expect(_current(sam, "queue")).to_have_count(0)
    expect(sam.locator("#queue .queue-item")).to_have_count(2)

    # Every list asks the server again (as after a reconnect): the mark survives that too.
    sam.evaluate("window.__mine = document.getElementById('mine')")
    sam.evaluate("htmx.trigger(document.body, 'console-resync')")
    # A function, not an expression: Playwright evaluates an expression with eval, which the
    # page's Content-Security-Policy refuses.
    sam.wait_for_function("() => document.getElementById('mine') !== window.__mine")
    expect(_current(sam, "mine")).to_have_text("Dan")
    assert sam.errors == [] and customer.errors == []
    context.close()
