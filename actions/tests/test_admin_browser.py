"""In Chromium: Ada opens Acme's lookup_order in Django admin, presses "Test this action", types
an order number and a customer id, and reads what the customer would read; the endpoint got the
signed customer id and the secret header, the page never shows the secret."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from actions.tests.business_server import BusinessServer
from actions.tests.factories import ActionFactory
from bots.tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRET = "Bearer shop-secret-browser-31"


@pytest.fixture
def intranet(settings):
    """Set before the live server forks (it is listed first): the business's stand-in is on
    127.0.0.1, which only an instance allowing private networks may call."""
    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def business():
    server = BusinessServer()
    yield server
    server.close()


def test_an_owner_tests_an_action_from_its_admin_page(
    intranet, live_asgi_server, browser_context, owner, acme_bot, business
):
    business.answer("/orders/1234", {"id": "1234", "status": "shipped", "eta": "Friday"})
    action = ActionFactory(
        bot=acme_bot,
        url_template=business.url + "/orders/{order_id}",
        secret_header_name="Authorization",
        secret_header_value=SECRET,
    )
    page = browser_context.new_page()
    page.goto(f"{live_asgi_server}/accounts/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/o/acme/$"))

    page.goto(live_asgi_server + reverse("admin:actions_action_change", args=[action.pk]))
    expect(page.get_by_text("Set (hidden)")).to_be_visible()
    page.get_by_role("link", name="Test this action").click()
    expect(page).to_have_url(re.compile(rf"/admin/actions/action/{action.pk}/test/$"))

    page.get_by_label("Arguments (JSON)").fill('{"order_id": "1234"}')
    page.get_by_label("Customer id").fill("vera-42")
    page.get_by_role("button", name="Run the test").click()

    expect(page.locator("#action-test-outcome")).to_have_text("ok")
    expect(page.locator("#action-test-text")).to_have_text(
        "Order 1234 is shipped, arriving Friday."
    )
    expect(page.locator("#action-test-record")).to_contain_text('"outcome": "ok"')
    assert SECRET not in page.content()
    [seen] = business.requests
    assert seen.headers["X-Handoff-User-Id"] == "vera-42"
    assert seen.headers["Authorization"] == SECRET

    # Without a customer id a verified-only action calls nothing and says why.
    page.get_by_label("Customer id").fill("")
    page.get_by_role("button", name="Run the test").click()
    expect(page.locator("#action-test-outcome")).to_have_text("unverified")
    assert len(business.requests) == 1
