"""In Chromium, the knowledge page: a new file shows "Checking…" while the worker reads it, then
the refusal with its reason, and the previous version is still listed as serving."""

import pytest
from playwright.sync_api import expect

from bots.tests.factories import PASSWORD
from knowledge import services, tasks
from knowledge.models import KnowledgeSource
from knowledge.tests.conftest import FAQ_CSV

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _knowledge_page(context, base, owner, bot):
    page = context.new_page()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(f"{base}/o/{bot.organization.slug}/bots/{bot.slug}/knowledge/")
    return page


def test_a_malformed_replacement_shows_checking_then_its_error_and_the_old_version_serves(
    live_asgi_server, browser_context, owner, acme_bot
):
    source = services.source_upload(bot=acme_bot, filename="faq.csv", data=FAQ_CSV, sync_now=True)
    page = _knowledge_page(browser_context, live_asgi_server, owner, acme_bot)
    row = page.locator(f"#source-{source.pk}")
    expect(row).to_contain_text("Ready")

    bad = {"name": "faq-v2.csv", "mimeType": "text/csv", "buffer": b"question,answer\nWhy?,\n"}
    row.locator("input[type=file]").set_input_files(bad)  # "Replace" submits on change
    expect(page.get_by_text("The current version keeps serving")).to_be_visible()
    row = page.locator(f"#source-{source.pk}")
    expect(row).to_contain_text("Checking…")
    expect(row).to_contain_text("Reading faq-v2.csv; faq.csv keeps serving until it passes.")

    tasks.source_sync(source.pk)  # the worker's turn; the page polls until it is done

    expect(row).to_contain_text("faq-v2.csv was refused: Row 2: the answer column is empty")
    expect(row).to_contain_text("The previous version (faq.csv) keeps serving.")
    expect(row.locator(".badge")).to_have_text("Ready")
    expect(row.locator("td").nth(3)).to_have_text("4")  # its documents still answer
    source.refresh_from_db()
    assert source.filename == "faq.csv" and source.document_count == 4


def test_a_malformed_first_upload_shows_checking_then_fails_with_its_line(
    live_asgi_server, browser_context, owner, acme_bot
):
    page = _knowledge_page(browser_context, live_asgi_server, owner, acme_bot)
    bad = {"name": "faq.csv", "mimeType": "text/csv", "buffer": b"question,answer\nWhere?,\n"}
    page.get_by_label("File").set_input_files(bad)
    page.get_by_role("button", name="Upload").click()
    source = KnowledgeSource.objects.get(bot=acme_bot)
    row = page.locator(f"#source-{source.pk}")
    expect(row).to_contain_text("Checking…")

    tasks.source_sync(source.pk)

    expect(row.locator(".badge")).to_have_text("Failed")
    expect(row).to_contain_text("faq.csv was refused: Row 2: the answer column is empty")
