"""The knowledge gaps in Chromium: Ada reads the section of the analytics page, narrows it to a
bot, opens a gap's conversation; turns the weekly e-mail off on her profile; and stops it from
the e-mail's unsubscribe link. The browser fixture fails a test on any CSP violation."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from analytics import digest
from analytics.tests.gapbuilders import asked
from bots.models import Membership
from escalation.tests.test_console_browser import _sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CANADA = ("Do you ship to Canada?", "Can you deliver to Toronto?", "Do you deliver to Canada?")


def _page(chromium, base, user):
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    _sign_in(page, base, user.email)
    return context, page


def test_ada_reads_the_gaps_narrows_them_to_a_bot_and_opens_a_conversation(
    live_asgi_server, chromium, acme, shop, owner
):
    questions = [asked(shop, text) for text in CANADA]
    asked(shop, "Can I buy a gift card?")
    context, page = _page(chromium, live_asgi_server, owner)

    page.get_by_role("link", name="Analytics").click()
    section = page.locator("#knowledge-gaps")
    expect(section.get_by_role("heading", name="Knowledge gaps")).to_be_visible()
    first = section.locator('[data-gap-rank="1"]')
    expect(first.locator("[data-customers]")).to_have_text("3 customers")
    expect(first.locator("[data-trend]")).to_have_text("new this period")
    expect(section.locator("[data-gap-rank]")).to_have_count(2)

    page.get_by_label("Bot", exact=True).select_option(str(shop.pk))
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(rf"bot={shop.pk}"))
    expect(page.locator("#knowledge-gaps [data-gap-rank]")).to_have_count(2)

    newest = questions[-1].conversation_id
    page.locator(f'#knowledge-gaps a[data-conversation-id="{newest}"]').first.click()
    expect(page).to_have_url(re.compile(rf"/o/acme/conversations/{newest}/"))
    assert page.errors == []
    context.close()


def test_ada_turns_the_weekly_email_off_on_her_profile(live_asgi_server, chromium, acme, owner):
    context, page = _page(chromium, live_asgi_server, owner)

    page.goto(f"{live_asgi_server}/accounts/profile/")
    box = page.get_by_label(re.compile("Weekly knowledge gaps of Acme"))
    expect(box).to_be_checked()
    box.uncheck()
    page.get_by_role("button", name="Save e-mail choices").click()

    expect(page.get_by_text("Your e-mail choices are saved.")).to_be_visible()
    expect(page.get_by_label(re.compile("Weekly knowledge gaps of Acme"))).not_to_be_checked()
    assert Membership.objects.get(user=owner).gaps_digest is False
    context.close()


def test_the_unsubscribe_link_stops_the_email_without_signing_in(
    live_asgi_server, chromium, acme, owner
):
    link = urlsplit(digest.unsubscribe_url(Membership.objects.get(user=owner))).path
    context = chromium.new_context()
    page = context.new_page()

    page.goto(live_asgi_server + link)
    assert Membership.objects.get(user=owner).gaps_digest is True
    page.get_by_role("button", name="Stop these e-mails").click()

    expect(page.get_by_role("status")).to_contain_text("no longer gets the weekly knowledge gaps")
    assert Membership.objects.get(user=owner).gaps_digest is False
    context.close()
