"""In Chromium, through the real pages: sign in, and see the organization update live."""

import re

import pytest
from playwright.sync_api import expect

from bots.tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_the_owner_signs_in_through_the_login_page(
    live_asgi_server, browser_context, owner, acme_bot
):
    page = browser_context.new_page()
    _sign_in(page, live_asgi_server, owner.email)
    expect(page).to_have_url(re.compile(r"/o/acme/$"))
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    expect(page.locator("#bot-list")).to_contain_text("Acme Support")


def test_a_wrong_password_is_refused_on_the_page(live_asgi_server, browser_context, owner):
    page = browser_context.new_page()
    page.goto(f"{live_asgi_server}/accounts/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text("not correct")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_a_new_bot_appears_live_on_a_colleagues_open_page(
    live_asgi_server, browser_context, chromium, owner, admin_member
):
    # Ian watches the organization page in his own browser; Ada creates a bot in hers.
    watching = chromium.new_context()
    ian = watching.new_page()
    _sign_in(ian, live_asgi_server, admin_member.email)
    expect(ian.locator("#bot-list")).to_contain_text("No bots yet")
    # Wait until the socket is open, or the push could race the subscription.
    expect(ian.locator("#live")).to_have_attribute("data-live", "on")

    ada = browser_context.new_page()
    _sign_in(ada, live_asgi_server, owner.email)
    ada.get_by_label("Name").fill("Returns desk")
    ada.get_by_role("button", name="Create bot").click()
    expect(ada.get_by_role("heading", name="Returns desk")).to_be_visible()

    expect(ian.locator("#bot-list")).to_contain_text("Returns desk", timeout=5_000)
    watching.close()
