"""In Chromium: Ian changes a rule in Django admin; Ada opens the audit log from the menu,
filters by person and kind, and reads what Ian changed, when and from where."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from bots.tests.factories import PASSWORD
from escalation.tests.factories import EscalationRuleFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/o/acme/$"))


def test_an_owner_filters_the_audit_log_to_what_an_admin_changed(
    live_asgi_server, browser_context, chromium, owner, admin_member, acme_bot
):
    rule = EscalationRuleFactory(
        bot=acme_bot, name="Billing", trigger="keywords", phrases="invoice", mode="offer"
    )
    ian_context = chromium.new_context()
    ian = ian_context.new_page()
    _sign_in(ian, live_asgi_server, admin_member.email)
    ian.goto(live_asgi_server + reverse("admin:escalation_escalationrule_change", args=[rule.pk]))
    ian.get_by_label("Mode").select_option("handoff")
    ian.get_by_role("button", name="Save", exact=True).click()
    expect(ian.locator(".messagelist")).to_contain_text("was changed successfully")
    ian_context.close()

    ada = browser_context.new_page()
    _sign_in(ada, live_asgi_server, owner.email)
    # Ada reveals the bot's secret key: another person's row, another kind.
    ada.goto(f"{live_asgi_server}/o/acme/bots/{acme_bot.slug}/integrations/")
    ada.get_by_role("button", name="Reveal secret key").click()
    expect(ada.locator("#secret-key")).to_be_visible()

    ada.get_by_role("link", name="Audit log").click()
    rows = ada.locator("#audit-rows tbody tr")
    expect(rows.filter(has_text="Ada revealed the secret key of bot 'Acme Support'")).to_have_count(
        1
    )
    ada.get_by_label("Person").select_option(label="Ian")
    ada.get_by_label("Kind").select_option(label="Escalation rules")
    ada.get_by_role("button", name="Filter").click()
    expect(ada).to_have_url(re.compile(rf"actor={admin_member.pk}&kind=rules"))
    expect(rows).to_have_count(1)
    row = rows.first
    expect(row).to_contain_text(
        "Ian changed rule 'Billing' of bot 'Acme Support' mode: offer → handoff"
    )
    expect(row.locator("td").nth(3)).to_have_text("127.0.0.1")
    expect(ada.get_by_text("revealed the secret key")).to_have_count(0)


def test_an_owner_rotates_the_secret_key_and_the_log_says_so(
    live_asgi_server, browser_context, owner, acme_bot
):
    old = acme_bot.secret_key
    page = browser_context.new_page()
    _sign_in(page, live_asgi_server, owner.email)
    page.goto(f"{live_asgi_server}/o/acme/bots/{acme_bot.slug}/integrations/")
    page.get_by_text("Rotate…").click()
    page.get_by_role("button", name="Rotate secret key").click()
    expect(page.get_by_role("status")).to_contain_text("The old one no longer works")
    expect(page.locator("#secret-key")).not_to_have_text(old)
    acme_bot.refresh_from_db()
    expect(page.locator("#secret-key")).to_have_text(acme_bot.secret_key)

    page.get_by_role("link", name="Audit log").click()
    page.get_by_label("Kind").select_option(label="Keys")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit-rows tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ada rotated the secret key of bot 'Acme Support'")
    expect(page.locator("#audit-rows")).not_to_contain_text(acme_bot.secret_key)
