"""In Chromium: Ada, Acme's owner, changes Sam's role and then removes him in Django admin
while Sam has the console open. His console reloads with the new role, then, removed, stops
being a console at all; Ian's stays live throughout."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from bots.models import Membership
from escalation.tests.test_console_browser import _open_console, _sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _membership_in_admin(page, base, user):
    page.goto(f"{base}/admin/bots/membership/")
    membership = Membership.objects.get(user=user)
    page.locator(f'a[href$="/admin/bots/membership/{membership.pk}/change/"]').click()


def test_a_role_change_reloads_the_console_and_a_removal_ends_it(
    live_asgi_server, chromium, owner, agent, admin_member
):
    sam_context, sam = _open_console(chromium, live_asgi_server, agent)
    ian_context, ian = _open_console(chromium, live_asgi_server, admin_member)
    ada_context = chromium.new_context()
    ada_context.set_default_timeout(10_000)
    ada = ada_context.new_page()
    _sign_in(ada, live_asgi_server, owner.email)

    _membership_in_admin(ada, live_asgi_server, agent)
    ada.get_by_label("Role").select_option("admin")
    # Closed with 4409, Sam's page reloads and works with the new role.
    with sam.expect_event("load"):
        ada.get_by_role("button", name="Save", exact=True).click()
    expect(ada.get_by_text("was changed successfully")).to_be_visible()
    expect(sam.locator("#console")).to_have_attribute("data-live", "on")

    _membership_in_admin(ada, live_asgi_server, agent)
    ada.get_by_role("link", name="Delete").click()
    with sam.expect_event("load"):
        ada.get_by_role("button", name="Yes, I’m sure").click()
    expect(ada.get_by_text("was deleted successfully")).to_be_visible()
    # Closed with 4403, the page reloads into what a non-member gets: no console.
    expect(sam.locator("#console")).to_have_count(0)
    expect(ian.locator("#console")).to_have_attribute("data-live", "on")
    assert ian.errors == []
    for context in (sam_context, ian_context, ada_context):
        context.close()


def test_a_member_removed_in_bulk_loses_the_organization_page(
    live_asgi_server, chromium, owner, agent
):
    sam_context = chromium.new_context()
    sam_context.set_default_timeout(10_000)
    sam = sam_context.new_page()
    _sign_in(sam, live_asgi_server, agent.email)
    expect(sam.locator("#live")).to_have_attribute("data-live", "on")
    ada_context = chromium.new_context()
    ada_context.set_default_timeout(10_000)
    ada = ada_context.new_page()
    _sign_in(ada, live_asgi_server, owner.email)

    ada.goto(f"{live_asgi_server}/admin/bots/membership/")
    ada.get_by_role(
        "checkbox", name="Select this object for an action - sam@acme.example · Acme (agent)"
    ).check()
    ada.locator('select[name="action"]').select_option("delete_selected")
    ada.get_by_role("button", name="Go").click()
    with sam.expect_event("load"):
        ada.get_by_role("button", name="Yes, I’m sure").click()
    expect(ada.get_by_text("Successfully deleted 1 membership")).to_be_visible()
    expect(sam.locator("#live")).to_have_count(0)
    for context in (sam_context, ada_context):
        context.close()
