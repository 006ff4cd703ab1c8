"""The dashboard in Chromium, with customers in another browser: Ada watches the "Now" tile
count a customer who asks for a person without reloading; after the rollups catch up, a chat
the bot answered and the customer confirmed with "Yes" shows as bot-resolved, and the one Sam
took and resolved in the console as agent-resolved. The charts (vendored Chart.js) draw under
the Content-Security-Policy (the browser fixture fails the test on a violation)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from analytics.services import rollups_refresh
from chat.tests import test_widget_browser as widget_browser
from chat.tests.test_outcomes_browser import QUESTION, _eventually
from conversations.models import Conversation
from escalation.tests.test_console_browser import _open_console, _sign_in

shop = widget_browser.shop
demo_bot = widget_browser.demo_bot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _open_dashboard(chromium, base, user):
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    # htmx logs a pushed fragment with no element here (the console's queue, say) as an error.
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    # What the organization's socket brings: the tile must arrive there, not by its refresh.
    page.pushed = []

    def watch(ws):
        if urlsplit(ws.url).path == "/ws/o/acme/":  # the organization socket, not the widget
            ws.on("framereceived", lambda payload: page.pushed.append(payload))

    page.on("websocket", watch)
    _sign_in(page, base, user.email)
    page.get_by_role("link", name="Analytics").click()
    expect(page.locator("#analytics-live")).to_have_attribute("data-live", "on")
    return context, page


def _tile(page, name):
    return page.locator(f'#analytics-now [data-figure="{name}"]')


def _figure(page, name):
    return page.locator(f'[data-figure="{name}"]').first


def test_the_dashboard_counts_a_bot_resolved_and_an_agent_resolved_chat_and_the_queue_live(
    live_asgi_server, browser_context, chromium, shop, demo_bot, owner, agent
):
    shop.embed(live_asgi_server, demo_bot.public_key)

    # Carla asks, the bot answers from the knowledge, and she confirms it helped.
    carla = browser_context.new_page()
    carla.errors = []
    carla.on("pageerror", lambda error: carla.errors.append(str(error)))
    carla.goto(shop.origin)
    widget_browser._launcher(carla).click()
    widget_browser._ask(carla, QUESTION)
    answer = widget_browser._bot_answers(carla).last
    expect(answer).to_contain_text("two-year warranty", timeout=widget_browser.ANSWER_MS)
    asked = widget_browser._chat(carla).get_by_role("group", name="Did that answer your question?")
    asked.get_by_role("button", name="Yes").click()
    expect(asked).to_have_count(0)
    _eventually(lambda: Conversation.objects.filter(resolution="bot").count() == 1, carla)

    # Ada opens the dashboard: nobody waiting yet.
    ada_context, ada = _open_dashboard(chromium, live_asgi_server, owner)
    expect(_tile(ada, "waiting")).to_have_text("0")
    ada.evaluate("window.__notReloaded = true")

    # Dan, in a browser of his own, asks for a person: the tile counts him without a reload,
    # pushed: within 5 s (room for a busy machine), the tile's own refresh being every 30 s.
    dan_context = chromium.new_context()
    dan = dan_context.new_page()
    dan.errors = []
    dan.on("pageerror", lambda error: dan.errors.append(str(error)))
    dan.goto(shop.origin)
    widget_browser._launcher(dan).click()
    dans_chat = widget_browser._chat(dan)
    dans_chat.get_by_role("button", name="Talk to a person").click()
    expect(dans_chat).to_contain_text("Connecting you with a person…")
    expect(_tile(ada, "waiting")).to_have_text("1", timeout=5_000)
    assert any('data-figure="waiting">1<' in str(frame) for frame in ada.pushed)
    expect(_tile(ada, "longest-wait")).not_to_have_text("–")
    assert ada.evaluate("window.__notReloaded") is True

    # Sam takes Dan's chat in the console and resolves it; the tile empties, live again.
    waiting = Conversation.objects.get(status="waiting")
    sam_context, sam = _open_console(chromium, live_asgi_server, agent)
    sam.locator(f'#queue .queue-item[data-conversation-id="{waiting.pk}"]').get_by_role(
        "link"
    ).click()
    pane = sam.locator("#pane")
    pane.get_by_role("button", name="Claim").click()
    expect(pane).to_contain_text("With an agent: Sam")
    expect(_tile(ada, "waiting")).to_have_text("0", timeout=5_000)
    pane.get_by_role("button", name="Resolve").click()
    _eventually(lambda: Conversation.objects.filter(resolution="agent").count() == 1, sam)
    assert ada.evaluate("window.__notReloaded") is True

    # The worker's rollup, run here; the dashboard then shows both outcomes.
    rollups_refresh()
    ada.reload()
    expect(_figure(ada, "conversations")).to_have_text("2")
    expect(_figure(ada, "bot-resolved")).to_have_text("1")
    expect(_figure(ada, "agent-resolved")).to_have_text("1")
    expect(ada.locator('[data-figure="ai-resolution-rate"] .tile-value')).to_have_text("50%")
    expect(ada.locator("#volume-title ~ .two")).to_contain_text("Widget")
    # Sam's row in the agents table, and the charts drawn (canvases with pixels).
    expect(ada.locator(f'tr[data-agent-id="{agent.pk}"]')).to_contain_text("Sam")
    for chart in ("chart-rates", "chart-csat"):
        _eventually(
            lambda chart=chart: ada.evaluate(
                f"!!Chart.getChart(document.getElementById('{chart}'))"
            ),
            ada,
        )
    assert ada.errors == [] and carla.errors == [] and dan.errors == []
    for context in (ada_context, sam_context, dan_context):
        context.close()


# The test process commits without a push reaching the live server (another process, its own
# in-memory channel layer): exactly a push the dashboard missed while its socket was down.
RECORD_SOCKET = """
document.addEventListener("htmx:wsOpen", (event) => { window.__ws = event.detail.socketWrapper; });
"""


def test_a_missed_push_shows_in_the_now_tile_after_the_socket_reconnects(
    live_asgi_server, chromium, owner, carla
):
    from django.utils import timezone

    from conversations.tests.factories import ConversationFactory

    context, ada = _open_dashboard(chromium, live_asgi_server, owner)
    context.add_init_script(RECORD_SOCKET)
    ada.reload()
    expect(ada.locator("#analytics-live")).to_have_attribute("data-live", "on")
    # The open socket's re-sync asks for the tile (marked htmx-request while it is out): let
    # that answer land before the change. (Waiting for a response matched the page before the
    # reload's too, and CI once saw the new page's re-sync bring the change.)
    expect(ada.locator("#analytics-now.htmx-request")).to_have_count(0)
    expect(_tile(ada, "waiting")).to_have_text("0")
    ada.evaluate("window.__notReloaded = true")

    ConversationFactory(customer=carla, status="waiting", handoff_at=timezone.now())
    ada.wait_for_timeout(1_000)
    expect(_tile(ada, "waiting")).to_have_text("0")  # never pushed
    ada.evaluate("window.__ws.reconnect()")
    expect(_tile(ada, "waiting")).to_have_text("1", timeout=5_000)
    assert ada.evaluate("window.__notReloaded") is True
    assert ada.errors == []
    context.close()
