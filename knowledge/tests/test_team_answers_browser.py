"""In Chromium, the knowledge page's "Answers from the team": Ada sees the answer Sam saved and
deletes it (after confirming); the worker syncs the team source without it."""

import pytest
from playwright.sync_api import expect

from knowledge import services, tasks
from knowledge.models import Document, KnowledgeSource, TeamAnswer
from knowledge.tests.test_knowledge_browser import _knowledge_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_owner_deletes_a_team_answer_and_the_bot_stops_giving_it(
    live_asgi_server, browser_context, owner, agent, acme_bot
):
    saved = services.team_answer_save(
        bot=acme_bot,
        question="Can I pay with Bitcoin?",
        answer="No, only cards and PayPal.",
        conversation_id=12,
        user=agent,
    )
    source = KnowledgeSource.objects.get(bot=acme_bot, kind="team")
    tasks.source_sync(source.pk)
    assert Document.objects.filter(source=source).count() == 1

    page = _knowledge_page(browser_context, live_asgi_server, owner, acme_bot)
    row = page.locator(f"#team-answer-{saved.pk}")
    expect(row).to_contain_text("Can I pay with Bitcoin?")
    expect(row).to_contain_text("by Sam")
    expect(row.get_by_role("link", name="conversation #12")).to_have_attribute(
        "href", "/o/acme/console/c/12/"
    )
    expect(page.locator(f"#source-{source.pk}")).to_contain_text("Answers from the team")
    expect(page.locator(f"#source-{source.pk}").get_by_text("Replace")).to_have_count(0)

    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    row.get_by_role("button", name="Delete").click()
    expect(row).to_be_visible()  # dismissed: nothing sent
    assert dialogs == ["Delete this answer? The bot stops giving it after the next sync."]
    assert TeamAnswer.objects.filter(pk=saved.pk).exists()

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(page.get_by_text("Team answer “Can I pay with Bitcoin?” deleted.")).to_be_visible()
    expect(page.locator("#team-answers")).to_contain_text("None yet.")
    assert not TeamAnswer.objects.exists()

    tasks.source_sync(source.pk)  # the worker's turn; the page polls until it is done
    expect(page.locator(f"#source-{source.pk} .badge")).to_have_text("Ready")
    expect(page.locator(f"#source-{source.pk} td").nth(3)).to_have_text("0")
    assert not Document.objects.filter(source=source).exists()
