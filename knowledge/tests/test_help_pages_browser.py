"""In Chromium: a citation of an uploaded document (no address of its own) opens the document's
public help page in a new tab, at the section the answer quoted."""

from __future__ import annotations

import re
import socket
from functools import partial
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import _forked_server_setup
from knowledge import services
from knowledge.tests.help_fixtures import GIFT_CARDS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DEMO = Path(__file__).resolve().parents[2] / "bots" / "demo"
# The first answer calibrates the bot's relevance gate, on a shared 2-core box.
ANSWER_MS = 120_000


@pytest.fixture
def own_site(transactional_db, settings):
    """The live server, whose SITE_URL is its own address, as `manage.py serve` makes it: the
    links it puts in answers must lead back to it. (The shared live_asgi_server keeps the
    default SITE_URL; its port is known only once it listens, after the fork.)"""
    from channels.testing.live import make_application
    from daphne.testing import DaphneProcess
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.db import connections

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.SITE_URL = f"http://127.0.0.1:{port}"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    settings.CHAT_RECOVER_EVERY_SECONDS = 0
    connections.close_all()
    process = DaphneProcess(
        "127.0.0.1",
        partial(make_application, static_wrapper=ASGIStaticFilesHandler),
        setup=_forked_server_setup,
        port=port,
    )
    process.start()
    if not process.ready.wait(timeout=30):
        process.terminate()
        raise RuntimeError("the live daphne server did not start in 30 s")
    yield settings.SITE_URL
    process.terminate()
    process.join(timeout=10)


@pytest.fixture
def gift_card_bot(acme_bot):
    """Acme's bot with the demo FAQ and intents and an uploaded guide with no URL."""
    for name in ("acme-faq.csv", "acme-intents.json"):
        services.source_upload(
            bot=acme_bot, filename=name, data=(DEMO / name).read_bytes(), sync_now=True
        )
    services.source_upload(bot=acme_bot, filename="gift-cards.md", data=GIFT_CARDS, sync_now=True)
    return acme_bot


def test_a_citation_opens_the_help_page_at_the_quoted_section(
    gift_card_bot, own_site, browser_context
):
    # The knowledge is loaded before the server forks, so it starts with the model in memory.
    page = browser_context.new_page()
    page.set_viewport_size({"width": 1000, "height": 500})
    page.goto(f"{own_site}/chat/{gift_card_bot.public_key}/")
    chat = page.get_by_role("region", name="Acme Support")
    box = page.get_by_label("Your message")
    box.fill("Do Acme gift cards expire?")
    box.press("Enter")

    answer = chat.locator(".msg.ai.complete").last
    expect(answer).to_contain_text("never expire", timeout=ANSWER_MS)
    # Named by its section and document; the document has no address, so: its help page.
    source = answer.get_by_role("link", name="Gift card expiry · Gift cards")
    expect(source).to_have_attribute(
        "href",
        re.compile(
            rf"^{re.escape(own_site)}/help/acme/acme-support/\d+-gift-cards/#gift-card-expiry$"
        ),
    )
    expect(source).to_have_attribute("target", "_blank")

    with browser_context.expect_page() as opened:
        source.click()
    help_page = opened.value
    help_page.wait_for_load_state()

    assert help_page.url.endswith("#gift-card-expiry")
    heading = help_page.get_by_role("heading", name="Gift card expiry")
    expect(heading).to_have_attribute("id", "gift-card-expiry")
    expect(heading).to_be_in_viewport()
    # Scrolled there: the page's first section is above the fold.
    expect(help_page.get_by_role("heading", name="Gift cards", exact=True)).not_to_be_in_viewport()
    expect(help_page.get_by_text("Acme gift cards never expire")).to_be_visible()
