"""In Chromium (issue 12, finding 5): old `javascript:` addresses are never links in the
console or the widget, and every main page works under the Content-Security-Policy (the
conftest watch fails any browser test that meets a violation)."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from bots.tests.factories import PASSWORD
from conversations.models import Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from escalation.models import EscalationLog
from escalation.services import escalation_open

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VISITOR = "visitor-csp-0001"
CITATIONS = [
    {"n": 1, "title": "Old script", "url": "javascript:document.title='pwned'"},
    {"n": 2, "title": "Old spaced", "url": " \tJaVaScRiPt:alert(1)"},
    {"n": 3, "title": "Old data", "url": "data:text/html,<script>alert(1)</script>"},
    {"n": 4, "title": "Warranty", "url": "https://acme.example/help/warranty"},
]


def _sign_in(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/o/acme/$"))


def _hrefs(locator) -> list[str]:
    return locator.evaluate_all("links => links.map((a) => a.getAttribute('href'))")


@pytest.fixture
def old_answer(acme_bot):
    """Carla's chat as stored before the fix: the bot cited unsafe addresses, and the handoff
    package kept them."""
    customer = CustomerFactory(bot=acme_bot, name="Carla", visitor_id=VISITOR)
    chat = ConversationFactory(customer=customer)
    question = MessageFactory(conversation=chat, text="How long is the warranty?")
    Message.objects.create(
        conversation=chat,
        sender="ai",
        reply_to=question,
        state="complete",
        text="Acme products come with a two-year warranty.",
        citations=CITATIONS,
    )
    escalation_open(conversation=chat, trigger="human_request", reason="Asked for a person")
    EscalationLog.objects.filter(conversation=chat).update(
        package={"retrieved": [{**c, "score": 0.5} for c in CITATIONS]}
    )
    return chat


def test_the_console_package_links_only_http_addresses(
    live_asgi_server, browser_context, agent, old_answer
):
    page = browser_context.new_page()
    _sign_in(page, live_asgi_server, agent.email)
    page.goto(f"{live_asgi_server}/o/acme/console/c/{old_answer.pk}/")
    package = page.locator(".package")
    expect(package).to_contain_text("Old script")
    expect(package.get_by_role("link", name="Warranty")).to_be_visible()

    hrefs = _hrefs(page.locator("a[href]"))
    assert [h for h in _hrefs(package.locator("a[href]"))] == [CITATIONS[3]["url"]]
    assert not [h for h in hrefs if "script" in h.lower() or h.lower().startswith("data:")]


def test_the_widget_shows_old_unsafe_citations_as_no_link(
    live_asgi_server, browser_context, acme_bot, old_answer
):
    page = browser_context.new_page()
    state = {"visitor_id": VISITOR, "conversation_id": old_answer.pk}
    page.add_init_script(
        f"localStorage.setItem('handoff:{acme_bot.public_key}:widget', '{json.dumps(state)}')"
    )
    page.goto(f"{live_asgi_server}/chat/{acme_bot.public_key}/")
    chat = page.locator("handoff-chat")
    expect(chat.get_by_text("two-year warranty")).to_be_visible()
    links = chat.locator(".sources a[href]")
    expect(links).to_have_count(1)

    assert _hrefs(links) == [CITATIONS[3]["url"]]


def test_the_widget_itself_refuses_non_http_links_whatever_the_server_sends(
    live_asgi_server, browser_context, acme_bot, old_answer
):
    # Defence in depth: frames rewritten on their way in, as from an older or hostile server.
    def tamper(ws):
        server = ws.connect_to_server()

        def relay(message):
            frame = json.loads(message)
            for msg in frame.get("messages") or []:
                if msg.get("sender") == "ai":
                    msg["citations"] = CITATIONS
            ws.send(json.dumps(frame))

        server.on_message(relay)

    page = browser_context.new_page()
    page.route_web_socket(re.compile(r"/ws/widget/"), tamper)
    state = {"visitor_id": VISITOR, "conversation_id": old_answer.pk}
    page.add_init_script(
        f"localStorage.setItem('handoff:{acme_bot.public_key}:widget', '{json.dumps(state)}')"
    )
    page.goto(f"{live_asgi_server}/chat/{acme_bot.public_key}/")
    chat = page.locator("handoff-chat")
    expect(chat.get_by_text("two-year warranty")).to_be_visible()
    links = chat.locator(".sources a[href]")
    expect(links).to_have_count(1)

    assert _hrefs(links) == [CITATIONS[3]["url"]]


def test_every_main_page_works_under_the_policy(live_asgi_server, browser_context, owner, acme_bot):
    owner.is_staff = owner.is_superuser = True  # the admin pages too
    owner.save(update_fields=["is_staff", "is_superuser"])
    page = browser_context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _sign_in(page, live_asgi_server, owner.email)
    base, bot = live_asgi_server, f"{live_asgi_server}/o/acme/bots/{acme_bot.slug}"
    for url in (
        f"{base}/o/acme/",
        f"{base}/o/acme/console/",
        f"{bot}/",
        f"{bot}/knowledge/",
        f"{bot}/integrations/",
        f"{bot}/playground/",
        f"{base}/o/acme/members/",
        f"{base}/accounts/profile/",
        f"{base}/admin/",
        f"{base}/admin/knowledge/document/",
        f"{base}/admin/bots/bot/{acme_bot.pk}/change/",
        f"{base}/chat/{acme_bot.public_key}/",
    ):
        response = page.goto(url)
        assert response.status == 200, url
        assert "script-src 'self' 'nonce-" in response.headers["content-security-policy"], url
        page.wait_for_load_state("networkidle")
    # The live pages still connect (their state moved from hx-on to app.js).
    page.goto(f"{base}/o/acme/")
    expect(page.locator("#live")).to_have_attribute("data-live", "on")
    page.goto(f"{bot}/playground/")
    expect(page.locator("handoff-chat").get_by_label("Your message")).to_be_visible()
    assert not errors


def test_the_watch_reports_what_the_policy_refuses(
    live_asgi_server, browser_context, csp_violations
):
    # The check every browser test relies on, shown to work: an inline script is refused.
    page = browser_context.new_page()
    page.goto(f"{live_asgi_server}/accounts/login/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = true'; document.body.append(s); }"
    )
    page.wait_for_timeout(200)

    assert page.evaluate("() => window.ran") is None
    assert any("script-src" in v for v in csp_violations), csp_violations
    csp_violations.clear()
