"""The widget in Chromium, end to end: a shop's page on another origin loads the script tag, and
the customer chats with Acme's bot (its demo knowledge, the real socket, the real pipeline).

The shop is served from 127.0.0.2, a loopback address outside ALLOWED_HOSTS, so only the bot's
allowed origins let it in; a second port there is a site that is not allowed.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect

from bots.tests.factories import PASSWORD
from conversations.models import Conversation, Customer, Message
from knowledge import services as knowledge_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO = Path(__file__).resolve().parents[2] / "bots" / "demo"
WARRANTY_URL = "https://acme.example/help/warranty"
# The first answer of a fresh server process loads the embedding model, on a shared 2-core box.
ANSWER_MS = 60_000


class Shop:
    """A customer's web site on its own origin: one page, which embeds the widget."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        shop = self
        self.html = "<p>Nothing here yet</p>"

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = shop.html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.origin = f"http://{host}:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def embed(self, server: str, key: str, extra: str = "") -> None:
        self.html = (
            "<!doctype html><html><head><title>Acme shop</title>"
            # The shop's own CSS must not reach into the widget.
            "<style>button { background: lime !important; } * { font-size: 40px; }</style>"
            f"</head><body><a href='#top'>Acme shop</a><h1>Welcome</h1>{extra}"
            f'<script src="{server}/widget.js" data-bot="{key}" async></script></body></html>'
        )

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def shop():
    site = Shop()
    yield site
    site.stop()


@pytest.fixture
def other_site():
    site = Shop()
    yield site
    site.stop()


@pytest.fixture
def demo_bot(acme_bot, shop):
    """Acme Support with the demo knowledge (FAQ, warranty article, intents), loaded through the
    knowledge services as an admin's upload would be; the shop may embed it."""
    for path in sorted(DEMO.iterdir()):
        knowledge_services.source_upload(
            bot=acme_bot, filename=path.name, data=path.read_bytes(), sync_now=True
        )
    acme_bot.allowed_origins = [shop.origin]
    acme_bot.save(update_fields=["allowed_origins"])
    return acme_bot


class Frames:
    """Every frame of the page's widget sockets, decoded, in order."""

    def __init__(self, page) -> None:
        self.sent: list[dict] = []
        self.received: list[dict] = []
        page.on("websocket", self._watch)

    def _watch(self, ws) -> None:
        if "/ws/widget/" not in ws.url:
            return
        ws.on("framesent", lambda payload: self.sent.append(json.loads(payload)))
        ws.on("framereceived", lambda payload: self.received.append(json.loads(payload)))

    def of_type(self, kind: str, frames=None) -> list[dict]:
        return [f for f in (self.received if frames is None else frames) if f["type"] == kind]


def _open_shop(browser_context, shop, live_asgi_server, bot):
    shop.embed(live_asgi_server, bot.public_key)
    page = browser_context.new_page()
    page.errors = []
    page.dialogs = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    frames = Frames(page)
    page.goto(shop.origin)
    return page, frames


def _launcher(page):
    return page.get_by_role("button", name="Chat with Acme Support")


def _tab_to(page, locator, limit=10):
    for _ in range(limit):
        page.keyboard.press("Tab")
        if locator.evaluate("el => el.getRootNode().activeElement === el"):
            return
    raise AssertionError("never reached by Tab")


def _ask(page, text):
    box = page.get_by_label("Your message")
    box.fill(text)
    box.press("Enter")


def _chat(page):
    return page.get_by_role("dialog", name="Acme Support")


def _bot_answers(page):
    return _chat(page).locator(".msg.ai.complete")


def test_a_customer_opens_the_chat_with_the_keyboard_and_gets_a_streamed_answer_with_sources(
    live_asgi_server, browser_context, shop, demo_bot
):
    page, frames = _open_shop(browser_context, shop, live_asgi_server, demo_bot)
    launcher = _launcher(page)
    _tab_to(page, launcher)
    page.keyboard.press("Enter")

    chat = _chat(page)
    expect(chat).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(chat).to_contain_text("Hi! I'm here to help")  # the greeting
    expect(page.get_by_label("Your message")).to_be_focused()
    # The host page's `button { background: lime }` stops at the shadow root.
    send = chat.get_by_role("button", name="Send")
    assert send.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(37, 99, 235)"

    page.keyboard.type("How long is the warranty on Acme products?")
    page.keyboard.press("Enter")

    answer = _bot_answers(page).last
    expect(answer).to_contain_text("two-year warranty", timeout=ANSWER_MS)
    source = answer.get_by_role("link", name=re.compile("Warranty"))
    expect(source).to_have_attribute("href", WARRANTY_URL)
    expect(source).to_have_attribute("target", "_blank")
    expect(source).to_have_attribute("rel", re.compile("noopener"))

    # Streamed: tokens of the pending answer arrived before the complete message replaced them.
    kinds = [f["type"] for f in frames.received]
    assert "message.token" in kinds
    assert kinds.index("message.token") < kinds.index("message.updated")
    # The question shows once: the echo took over the bubble shown while sending.
    expect(chat.locator(".msg.user")).to_have_count(1)
    assert page.errors == []


def test_gibberish_gets_a_clarifying_question(live_asgi_server, browser_context, shop, demo_bot):
    page, frames = _open_shop(browser_context, shop, live_asgi_server, demo_bot)
    _launcher(page).click()
    _ask(page, "xqzv blorf wug")

    answer = _bot_answers(page).last
    expect(answer).to_contain_text("?", timeout=ANSWER_MS)
    updated = frames.of_type("message.updated")[-1]["message"]
    assert updated["outcome"] == Message.Outcome.CLARIFIED


def test_a_typed_script_shows_as_text_and_never_runs(
    live_asgi_server, browser_context, shop, demo_bot
):
    page, _frames = _open_shop(browser_context, shop, live_asgi_server, demo_bot)
    _launcher(page).click()
    _ask(page, "<script>alert(1)</script><img src=x onerror=alert(2)>")

    mine = _chat(page).locator(".msg.user[data-id]")
    expect(mine).to_have_text("<script>alert(1)</script><img src=x onerror=alert(2)>")
    expect(_bot_answers(page)).to_have_count(1, timeout=ANSWER_MS)
    assert _chat(page).locator("script, img").count() == 0
    assert page.dialogs == []


def test_a_reload_keeps_the_conversation(live_asgi_server, browser_context, shop, demo_bot):
    page, _frames = _open_shop(browser_context, shop, live_asgi_server, demo_bot)
    _launcher(page).click()
    _ask(page, "How long is the warranty on Acme products?")
    expect(_bot_answers(page).last).to_contain_text("two-year warranty", timeout=ANSWER_MS)

    frames = Frames(page)
    page.reload()
    chat = _chat(page)
    # Still open, with the whole conversation, and the same one on the server.
    expect(chat.locator(".msg.user")).to_have_text(["How long is the warranty on Acme products?"])
    expect(_bot_answers(page).last).to_contain_text("two-year warranty")
    hello = frames.of_type("hello", frames.sent)[0]
    assert hello["conversation_id"] == Conversation.objects.get(bot=demo_bot).pk
    assert Conversation.objects.filter(bot=demo_bot).count() == 1


def test_opening_the_chat_stores_nothing_until_the_customer_asks(
    live_asgi_server, browser_context, shop, acme_bot
):
    acme_bot.allowed_origins = [shop.origin]
    acme_bot.save(update_fields=["allowed_origins"])
    page, frames = _open_shop(browser_context, shop, live_asgi_server, acme_bot)
    _launcher(page).click()
    chat = _chat(page)
    expect(chat).to_contain_text("Hi! I'm here to help")
    for _ in range(50):
        if frames.of_type("ready"):
            break
        page.wait_for_timeout(100)
    assert frames.of_type("ready")[0]["conversation"] is None
    assert not Conversation.objects.exists() and not Customer.objects.exists()

    # "Talk to a person" is the first action: it starts the conversation, in the queue.
    chat.get_by_role("button", name="Talk to a person").click()
    expect(chat).to_contain_text("Connecting you with a person…")
    expect(chat.locator(".status")).to_have_text("Waiting for a person…")
    conversation = Conversation.objects.get(bot=acme_bot)
    assert conversation.status == "waiting"

    frames = Frames(page)
    page.reload()
    expect(_chat(page)).to_contain_text("Connecting you with a person…")
    assert frames.of_type("hello", frames.sent)[0]["conversation_id"] == conversation.pk
    assert Conversation.objects.count() == 1 and Customer.objects.count() == 1
    assert page.errors == []


@pytest.mark.parametrize("server_got_it", [False, True], ids=["lost", "echo-lost"])
def test_a_message_sent_as_the_socket_drops_is_neither_lost_nor_doubled(
    live_asgi_server, browser_context, shop, demo_bot, server_got_it
):
    sent, dropped = [], []

    def flaky(ws):
        # The first connection dies as the customer's message leaves: before it reaches the
        # server (lost: the widget must resend it) or after (stored, but the echo is lost: the
        # resend must not store it twice). Later connections pass everything through.
        server = ws.connect_to_server()
        first = not dropped

        def to_server(message):
            frame = json.loads(message)
            sent.append(frame)
            if first and frame["type"] == "message":
                dropped.append(frame)
                if server_got_it:
                    server.send(message)
                ws.close(code=4000, reason="network blip")
            else:
                server.send(message)

        def to_page(message):
            if not (first and dropped):
                ws.send(message)

        ws.on_message(to_server)
        server.on_message(to_page)

    shop.embed(live_asgi_server, demo_bot.public_key)
    page = browser_context.new_page()
    page.route_web_socket(re.compile(r".*/ws/widget/.*"), flaky)
    page.goto(shop.origin)
    _launcher(page).click()
    _ask(page, "How long is the warranty on Acme products?")

    expect(_bot_answers(page).last).to_contain_text("two-year warranty", timeout=ANSWER_MS)
    chat = _chat(page)
    expect(chat.locator(".msg.user")).to_have_count(1)
    expect(_bot_answers(page)).to_have_count(1)
    hellos = [f for f in sent if f["type"] == "hello"]
    assert len(hellos) == 2
    # Resent before the widget knew of a conversation: one was started, once.
    assert Conversation.objects.filter(bot=demo_bot).count() == 1
    messages = [f for f in sent if f["type"] == "message"]
    assert {f["client_message_id"] for f in messages} == {dropped[0]["client_message_id"]}
    if not server_got_it:
        assert len(messages) == 2  # resent after the reconnect
    stored = Message.objects.filter(conversation__bot=demo_bot)
    assert stored.filter(sender=Message.Sender.USER).count() == 1
    assert stored.filter(sender=Message.Sender.AI).count() == 1


def test_a_site_that_is_not_allowed_gets_no_chat_and_a_clear_console_error(
    live_asgi_server, browser_context, shop, other_site, demo_bot
):
    other_site.embed(live_asgi_server, demo_bot.public_key)
    page = browser_context.new_page()
    console, errors = [], []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(other_site.origin)

    widget = page.locator("handoff-chat")
    expect(widget).to_have_attribute("data-state", "unavailable")
    expect(widget).to_be_hidden()
    expect(_launcher(page)).to_be_hidden()
    assert any("may not embed this chat" in line for line in console), console
    assert errors == []
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()


def test_tab_stays_inside_the_open_chat_and_escape_closes_it(
    live_asgi_server, browser_context, shop, demo_bot
):
    page, _frames = _open_shop(browser_context, shop, live_asgi_server, demo_bot)
    launcher = _launcher(page)
    _tab_to(page, launcher)
    page.keyboard.press("Enter")
    chat = _chat(page)
    expect(chat).to_be_visible()
    expect(chat).to_have_attribute("aria-modal", "true")

    inside = "el => el.shadowRoot && el.shadowRoot.activeElement "
    inside += "&& el.shadowRoot.activeElement.closest('[role=dialog]') !== null"
    widget = page.locator("handoff-chat")
    for _ in range(12):
        page.keyboard.press("Tab")
        assert widget.evaluate(inside), "focus left the open chat"
    for _ in range(6):
        page.keyboard.press("Shift+Tab")
        assert widget.evaluate(inside), "focus left the open chat"

    page.keyboard.press("Escape")
    expect(chat).to_be_hidden()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()


def test_the_chat_works_in_an_iframe_on_an_allowed_site(
    live_asgi_server, browser_context, shop, demo_bot
):
    frame_url = f"{live_asgi_server}/widget/{demo_bot.public_key}/frame"
    shop.html = (
        f"<!doctype html><h1>Help</h1><iframe src='{frame_url}' title='Chat' "
        "width='380' height='600'></iframe>"
    )
    page = browser_context.new_page()
    page.goto(shop.origin)
    chat = page.frame_locator("iframe").get_by_role("region", name="Acme Support")
    expect(chat).to_be_visible()
    chat.get_by_label("Your message").fill("How long is the warranty on Acme products?")
    chat.get_by_label("Your message").press("Enter")
    expect(chat.locator(".msg.ai.complete").last).to_contain_text(
        "two-year warranty", timeout=ANSWER_MS
    )


def test_the_full_page_chat_answers(live_asgi_server, browser_context, demo_bot):
    page = browser_context.new_page()
    page.goto(f"{live_asgi_server}/chat/{demo_bot.public_key}/")
    chat = page.get_by_role("region", name="Acme Support")
    expect(chat).to_be_visible()
    _ask(page, "How long is the warranty on Acme products?")
    expect(chat.locator(".msg.ai.complete").last).to_contain_text(
        "two-year warranty", timeout=ANSWER_MS
    )


def test_a_member_sees_the_trace_of_each_answer_in_the_playground(
    live_asgi_server, browser_context, owner, demo_bot
):
    page = browser_context.new_page()
    page.goto(f"{live_asgi_server}/accounts/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(f"{live_asgi_server}/o/acme/bots/{demo_bot.slug}/playground/")

    _ask(page, "How long is the warranty on Acme products?")
    answer = page.get_by_role("region", name="Acme Support").locator(".msg.ai.complete").last
    expect(answer).to_contain_text("two-year warranty", timeout=ANSWER_MS)
    message = Message.objects.get(conversation__bot=demo_bot, sender=Message.Sender.AI)
    trace = page.locator(f"#trace-{message.pk}")
    expect(trace).to_contain_text("Retrieved")
    expect(trace).to_contain_text("Warranty")
    # The raw trace only behind its toggle (the history page shares this partial).
    raw = trace.locator(".trace-raw pre")
    expect(raw).to_be_hidden()
    trace.get_by_text("Details: the raw trace (JSON)").click()
    expect(raw).to_contain_text('"retrieved"')
