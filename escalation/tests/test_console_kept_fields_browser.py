"""Sam has a chat and is resolving it: he ticks "the bot should have handled this", writes what
it lacked and a reply. The pane is re-rendered twice meanwhile: by his reply's answer, and by a
push (Ian moves the chat to Tier 2, so its status bar is swapped in out of band). What he ticked
and typed survives both; the reply box empties only because the reply was sent; Resolve records
the mark and the note."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory
from escalation.tests.test_console_browser import _open_console

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_ticked_mark_a_note_and_a_draft_survive_the_pane_being_re_rendered(
    live_asgi_server, chromium, acme_bot, agent, admin_member
):
    conversation = ConversationFactory(
        bot=acme_bot,
        customer=CustomerFactory(bot=acme_bot, name="Carla"),
        status=Conversation.Status.ACTIVE,
        assigned_agent=agent,
        priority="medium",
    )
    MessageFactory(conversation=conversation, sender="user", text="Is there a student discount?")
    context, sam = _open_console(chromium, live_asgi_server, agent)
    sam.goto(f"{live_asgi_server}/o/acme/console/c/{conversation.pk}/")
    expect(sam.locator("#console")).to_have_attribute("data-live", "on")
    pane = sam.locator("#pane")
    mark = pane.get_by_label("The bot should have handled this")
    note = pane.get_by_label("What the bot lacked (optional)")
    reply = pane.get_by_label(re.compile("Reply to"))
    mark.check()
    note.fill("Discounts are not in the FAQ")
    reply.fill("Yes, students get 15% off")

    # His reply's answer re-renders the whole pane: the sent reply is gone, the rest stays.
    pane.get_by_role("button", name="Send").click()
    expect(pane.locator(f"#transcript-{conversation.pk} .msg.agent").last).to_contain_text(
        "students get 15% off"
    )
    expect(reply).to_have_value("")
    expect(mark).to_be_checked()
    expect(note).to_have_value("Discounts are not in the FAQ")

    # A push: Ian moves the chat to Tier 2 from his console, and Sam's status bar (which holds
    # the resolve form) is swapped in out of band.
    ian_context, ian = _open_console(chromium, live_asgi_server, admin_member)
    ian.goto(f"{live_asgi_server}/o/acme/console/c/{conversation.pk}/")
    ian.locator("#pane").get_by_label("Transfer to").select_option(label="Tier 2")
    ian.locator("#pane").get_by_role("button", name="Transfer").click()
    expect(pane.locator(".pane-head")).to_contain_text("Tier 2")
    expect(mark).to_be_checked()
    expect(note).to_have_value("Discounts are not in the FAQ")
    ian_context.close()

    pane.get_by_role("button", name="Resolve").click()
    expect(pane.locator(".pane-head")).to_contain_text("Resolved")
    conversation.refresh_from_db()
    assert conversation.bot_missed
    assert conversation.bot_missed_note == "Discounts are not in the FAQ"
    assert sam.errors == []
    context.close()
