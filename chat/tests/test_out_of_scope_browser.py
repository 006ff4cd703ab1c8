"""A question the bot's knowledge does not cover, in Chromium: Carla asks Acme's bot (its demo
knowledge, the default escalation rules) something it has nothing on. The answer says so at
once, with "Talk to a person" under it on the first miss, and the button hands her over."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.tests import test_widget_browser as widget_browser
from chat.tests.test_outcomes_browser import _eventually
from conversations.models import Conversation, Message
from escalation.models import EscalationLog
from escalation.services import escalation_rules_create_defaults
from knowledge import services as knowledge_services

shop = widget_browser.shop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_bot(acme_bot, shop):
    """Acme Support with the demo knowledge, embeddable in the shop, and the default rules
    every new bot starts with."""
    for path in sorted(widget_browser.DEMO.iterdir()):
        knowledge_services.source_upload(
            bot=acme_bot, filename=path.name, data=path.read_bytes(), sync_now=True
        )
    acme_bot.allowed_origins = [shop.origin]
    acme_bot.save(update_fields=["allowed_origins"])
    escalation_rules_create_defaults(bot=acme_bot)
    return acme_bot


def test_an_out_of_scope_question_gets_an_honest_answer_and_a_person_at_once(
    live_asgi_server, browser_context, shop, demo_bot
):
    page, frames = widget_browser._open_shop(browser_context, shop, live_asgi_server, demo_bot)
    widget_browser._launcher(page).click()
    chat = widget_browser._chat(page)
    widget_browser._ask(page, "Is there a student discount?")

    answer = widget_browser._bot_answers(page).last
    expect(answer).to_contain_text(
        "I don't have information about that", timeout=widget_browser.ANSWER_MS
    )
    expect(answer).not_to_contain_text("tell me a bit more")  # no clarifying loop
    # The offer is under this first answer, not after another try.
    offer = answer.get_by_role("button", name="Talk to a person")
    expect(offer).to_be_visible()
    expect(answer.get_by_role("group", name="Suggestions").get_by_role("button")).to_have_count(2)
    updated = frames.of_type("message.updated")[-1]["message"]
    assert updated["outcome"] == Message.Outcome.HANDOFF_PROPOSED
    conversation = Conversation.objects.get(bot=demo_bot)
    assert conversation.with_bot  # offered, her choice

    offer.click()
    expect(chat).to_contain_text("Connecting you with a person…")
    _eventually(lambda: Conversation.objects.get(pk=conversation.pk).status == "waiting", page)
    log = EscalationLog.objects.get(conversation=conversation)
    assert (log.trigger, log.manual) == ("human_request", True)
    assert log.package["category"] == "out_of_scope"
    assert Message.objects.get(sender="ai").trace["category"] == "out_of_scope"
    assert page.errors == []
