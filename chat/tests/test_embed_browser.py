"""The Integrations page's script tag, pasted as is into a shop on another port of the same
machine, in Chromium: no chat until the shop's origin is allowed, then the bot answers.

The shop runs on 127.0.0.1 like the live server, on another port: another origin to the browser,
and so to the server (config.origins), whatever ALLOWED_HOSTS says about the host alone.
"""

from __future__ import annotations

from html import unescape
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from chat.tests.test_widget_browser import Shop
from knowledge import services as knowledge_services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO = Path(__file__).resolve().parents[2] / "bots" / "demo"
# The first answer of a fresh server process loads the embedding model, on a shared 2-core box.
ANSWER_MS = 60_000
# The page's script may open a socket and read how it closed.
SOCKET_CLOSE_CODE = """url => new Promise(resolve => {
    const socket = new WebSocket(url);
    socket.onclose = event => resolve(event.code);
})"""


@pytest.fixture
def local_shop():
    site = Shop(host="127.0.0.1")  # same host as the server, another port
    yield site
    site.stop()


def _pasted_script_tag(client, owner, acme, bot, settings, server: str) -> str:
    """The script tag exactly as the Integrations page shows it to copy, for this server."""
    settings.SITE_URL = server
    client.force_login(owner)
    body = client.get(reverse("bot_integrations", args=[acme.slug, bot.slug])).content.decode()
    start = body.index('id="snippet-script">') + len('id="snippet-script">')
    return unescape(body[start : body.index("</pre>", start)])


def test_the_pasted_snippet_chats_on_another_origin_only_once_that_origin_is_allowed(
    live_asgi_server, browser_context, local_shop, client, owner, acme, acme_bot, settings
):
    for path in sorted(DEMO.iterdir()):
        knowledge_services.source_upload(
            bot=acme_bot, filename=path.name, data=path.read_bytes(), sync_now=True
        )
    assert acme_bot.allowed_origins == []
    assert local_shop.origin != live_asgi_server
    snippet = _pasted_script_tag(client, owner, acme, acme_bot, settings, live_asgi_server)
    assert snippet.startswith(f'<script src="{live_asgi_server}/widget.js"')
    local_shop.html = (
        "<!doctype html><html><head><title>Acme shop</title></head>"
        f"<body><h1>Welcome</h1>{snippet}</body></html>"
    )
    page = browser_context.new_page()
    console = []
    page.on("console", lambda message: console.append(message.text))

    # Not allowed yet: no chat, a reason in the console, and the socket itself refused.
    page.goto(local_shop.origin)
    widget = page.locator("handoff-chat")
    expect(widget).to_have_attribute("data-state", "unavailable")
    expect(page.get_by_role("button", name="Chat with Acme Support")).to_be_hidden()
    assert any(f"{local_shop.origin} may not embed this chat" in line for line in console)
    socket_url = live_asgi_server.replace("http://", "ws://") + f"/ws/widget/{acme_bot.public_key}/"
    assert page.evaluate(SOCKET_CLOSE_CODE, socket_url) == 4403

    # The owner adds the shop's origin: the same page now chats.
    acme_bot.allowed_origins = [local_shop.origin]
    acme_bot.save(update_fields=["allowed_origins"])
    page.reload()
    launcher = page.get_by_role("button", name="Chat with Acme Support")
    launcher.click()
    chat = page.get_by_role("dialog", name="Acme Support")
    expect(chat).to_be_visible()
    box = page.get_by_label("Your message")
    box.fill("How long is the warranty on Acme products?")
    box.press("Enter")
    expect(chat.locator(".msg.ai.complete").last).to_contain_text(
        "two-year warranty", timeout=ANSWER_MS
    )
