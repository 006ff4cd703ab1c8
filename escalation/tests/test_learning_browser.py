"""The learning loop in Chromium. Carla asks Acme's bot (its demo knowledge, the default rules)
about a student discount, which nothing it knows covers; she asks for a person. Sam claims the
chat in the console, answers, resolves it marking that the bot should have handled it, and saves
his answer as an FAQ. The worker syncs "Answers from the team", and Dan, a new customer asking
in other words, gets the bot's answer citing it, and Ada (the owner) sees the gap in the analytics
page's knowledge gaps before and no longer after. And the suggested reply: Sam inserts the bot's
draft into the reply box, edits it and sends it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from chat.tests import test_widget_browser as widget_browser
from chat.tests.test_outcomes_browser import _eventually
from conversations.models import Conversation, Message
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from escalation.services import escalation_open, escalation_rules_create_defaults
from escalation.tests.test_console_browser import _open_console, _sign_in
from knowledge import services as knowledge_services
from knowledge import tasks
from knowledge.models import Document, KnowledgeSource, TeamAnswer

shop = widget_browser.shop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SAMS_ANSWER = (
    "Yes: students get 15% off every order. Enter the code STUDENT15 at checkout with a "
    "valid student card."
)


@pytest.fixture
def demo_bot(acme_bot, shop):
    """Acme Support with the demo knowledge, embeddable in the shop, with the default rules."""
    for path in sorted(widget_browser.DEMO.iterdir()):
        knowledge_services.source_upload(
            bot=acme_bot, filename=path.name, data=path.read_bytes(), sync_now=True
        )
    acme_bot.allowed_origins = [shop.origin]
    acme_bot.save(update_fields=["allowed_origins"])
    escalation_rules_create_defaults(bot=acme_bot)
    return acme_bot


def _customer(chromium, shop, base, bot):
    """A customer in a browser of their own (their own visitor id), the chat open."""
    context = chromium.new_context()
    context.set_default_timeout(10_000)
    shop.embed(base, bot.public_key)
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(shop.origin)
    widget_browser._launcher(page).click()
    expect(page.locator("handoff-chat")).to_have_attribute("data-state", "ready")
    return context, page


def _gaps(page, base):
    """The analytics page's knowledge gaps, once its section has loaded (after the page)."""
    page.goto(f"{base}/o/acme/analytics/")
    section = page.locator("#knowledge-gaps")
    expect(section.locator("[data-gap-rank], [data-gaps-empty]").first).to_be_visible()
    return section


def test_an_agents_answer_becomes_the_bots_answer_for_the_next_customer(
    live_asgi_server, chromium, shop, demo_bot, agent, owner
):
    # Carla: a question the knowledge does not cover, then a person.
    carla_context, carla = _customer(chromium, shop, live_asgi_server, demo_bot)
    widget_browser._ask(carla, "Is there a student discount?")
    answer = widget_browser._bot_answers(carla).last
    expect(answer).to_contain_text(
        "I don't have information about that", timeout=widget_browser.ANSWER_MS
    )
    answer.get_by_role("button", name="Talk to a person").click()
    expect(widget_browser._chat(carla)).to_contain_text("Connecting you with a person…")
    conversation = Conversation.objects.get(bot=demo_bot)
    _eventually(lambda: Conversation.objects.get(pk=conversation.pk).status == "waiting", carla)

    # Sam claims it, answers, and resolves it with the mark and a note.
    sam_context, sam = _open_console(chromium, live_asgi_server, agent)
    sam.locator(f'#queue .queue-item[data-conversation-id="{conversation.pk}"] a').click()
    pane = sam.locator("#pane")
    pane.get_by_role("button", name="Claim").click()
    expect(pane).to_contain_text("With an agent: Sam")
    pane.get_by_label(re.compile("Reply to")).fill(SAMS_ANSWER)
    pane.get_by_role("button", name="Send").click()
    expect(widget_browser._chat(carla).locator(".msg.agent").last).to_contain_text("STUDENT15")
    # The reply re-renders the pane (its answer, then the push): tick the box in the pane that
    # stays, or a late re-render would resolve without the mark.
    expect(pane.locator(f"#transcript-{conversation.pk} .msg.agent").last).to_contain_text(
        "STUDENT15"
    )
    expect(pane.get_by_label(re.compile("Reply to"))).to_have_value("")
    mark = pane.get_by_label("The bot should have handled this")
    mark.check()
    pane.get_by_label("What the bot lacked (optional)").fill("Discounts are not in the FAQ")
    expect(mark).to_be_checked()
    pane.get_by_role("button", name="Resolve").click()
    expect(pane.locator(".pane-head")).to_contain_text("Resolved")
    expect(pane).to_contain_text(
        "Marked: the bot should have handled this: Discounts are not in the FAQ"
    )
    conversation.refresh_from_db()
    assert conversation.bot_missed and conversation.bot_missed_note == (
        "Discounts are not in the FAQ"
    )

    # Ada, the owner, reads the gaps: the question the bot missed leads them.
    ada_context = chromium.new_context()
    ada_context.set_default_timeout(10_000)
    ada = ada_context.new_page()
    ada.errors = []
    ada.on("pageerror", lambda error: ada.errors.append(str(error)))
    _sign_in(ada, live_asgi_server, owner.email)
    first = _gaps(ada, live_asgi_server).locator('[data-gap-rank="1"]')
    expect(first).to_contain_text("Is there a student discount?")
    expect(first.locator(f'a[data-conversation-id="{conversation.pk}"]').first).to_be_visible()

    # Save as an FAQ: drafted from her question and his reply; he edits the question.
    pane.get_by_text("Save as an FAQ").click()
    question = pane.get_by_label("Question")
    expect(question).to_have_value("Is there a student discount?")
    expect(pane.get_by_label("Answer")).to_have_value(SAMS_ANSWER)
    question.fill("")
    pane.get_by_role("button", name="Save FAQ").click()
    expect(pane.get_by_role("alert")).to_have_text("Write the customer's question.")
    expect(pane.get_by_label("Answer")).to_have_value(SAMS_ANSWER)  # nothing lost
    pane.get_by_label("Question").fill("Is there a discount for students?")
    pane.get_by_role("button", name="Save FAQ").click()
    expect(pane.get_by_role("status")).to_contain_text("Saved to Answers from the team")
    saved = TeamAnswer.objects.get()
    assert (saved.question, saved.answer, saved.conversation_id) == (
        "Is there a discount for students?",
        SAMS_ANSWER,
        conversation.pk,
    )

    # The worker's turn: the team source syncs as any source does.
    source = KnowledgeSource.objects.get(bot=demo_bot, kind="team")
    assert source.status == "pending"
    tasks.source_sync(source.pk)
    source.refresh_from_db()
    assert (source.status, source.document_count) == ("ready", 1)

    # Dan, a new customer, asks in other words: the bot answers, citing the team.
    dan_context, dan = _customer(chromium, shop, live_asgi_server, demo_bot)
    widget_browser._ask(dan, "Do you offer students a reduced price?")
    answer = widget_browser._bot_answers(dan).last
    expect(answer).to_contain_text("STUDENT15", timeout=widget_browser.ANSWER_MS)
    cited = answer.locator(".sources a")
    expect(cited).to_have_count(1)
    expect(cited).to_contain_text("(Answers from the team)")
    team_document = Document.objects.get(source=source)
    expect(cited).to_have_attribute("href", re.compile(rf"/{team_document.pk}-"))
    reply = Message.objects.filter(sender="ai").exclude(conversation=conversation).last()
    assert reply.outcome == "answered"
    assert reply.citations[0]["source"] == "Answers from the team"
    assert reply.citations[0]["document_id"] == team_document.pk

    # The knowledge now answers it: the gap is gone from Ada's report.
    gaps = _gaps(ada, live_asgi_server)
    expect(gaps).not_to_contain_text("Is there a student discount?")
    assert carla.errors == [] and sam.errors == [] and dan.errors == [] and ada.errors == []
    for context in (carla_context, sam_context, dan_context, ada_context):
        context.close()


def test_an_agent_inserts_the_bots_suggested_reply_edits_it_and_sends_it(
    live_asgi_server, chromium, demo_bot, agent
):
    customer = CustomerFactory(bot=demo_bot, name="Vic")
    conversation = ConversationFactory(customer=customer)
    MessageFactory(conversation=conversation, text="I need a person")
    escalation_open(conversation=conversation, trigger="human_request", reason="Asked")
    # Asked while waiting for a person: the bot never answered it.
    MessageFactory(conversation=conversation, text="How long is the warranty on Acme products?")

    sam_context, sam = _open_console(chromium, live_asgi_server, agent)
    sam.locator(f'#queue .queue-item[data-conversation-id="{conversation.pk}"] a').click()
    pane = sam.locator("#pane")
    pane.get_by_role("button", name="Claim").click()
    suggestion = pane.locator(".suggestion")
    expect(suggestion).to_contain_text("two-year warranty", timeout=widget_browser.ANSWER_MS)
    box = pane.get_by_label(re.compile("Reply to"))
    box.fill("Hi Vic!")
    suggestion.get_by_role("button", name="Insert").click()
    drafted = suggestion.locator(".suggested-text").inner_text().strip()
    expect(box).to_have_value(f"Hi Vic!\n\n{drafted}")
    expect(box).to_be_focused()
    box.press("End")
    box.press_sequentially(" Anything else?")
    pane.get_by_role("button", name="Send").click()
    sent = f"Hi Vic!\n\n{drafted} Anything else?"
    expect(sam.locator(f"#transcript-{conversation.pk} .msg.agent").last).to_contain_text(
        "Anything else?"
    )
    message = Message.objects.filter(conversation=conversation, sender="agent").get()
    assert message.text == sent and message.agent == agent
    assert "two-year warranty" in message.text
    assert sam.errors == []
    sam_context.close()
