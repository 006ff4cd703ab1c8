"""Learning from agents in the console: resolving with "The bot should have handled this",
"Save as an FAQ" (the draft, the save into Answers from the team, refusals that keep what was
typed), and the bot's suggested reply; permissions and tenant isolation for each."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversations.models import Conversation, Message
from conversations.services import ConversationStateError
from conversations.tests.factories import MessageFactory
from escalation import learning, services
from escalation.services import escalation_open
from knowledge import services as knowledge_services
from knowledge.models import Document, KnowledgeSource, TeamAnswer
from knowledge.tests.conftest import FAQ_CSV

pytestmark = pytest.mark.django_db

Status = Conversation.Status
Sender = Message.Sender
HTMX = {"HTTP_HX_REQUEST": "true"}
ANSWER = "We do not take Bitcoin; pay by card, PayPal or bank transfer."


def _say(conversation, sender, text, **fields):
    return MessageFactory(conversation=conversation, sender=sender, text=text, **fields)


@pytest.fixture
def handed_off(carlas_chat):
    """Carla asked what the bot could not answer, then asked for a person."""
    _say(carlas_chat, Sender.USER, "Can I pay with Bitcoin?")
    _say(
        carlas_chat,
        Sender.AI,
        "I could not find that in what I know.",
        outcome="handoff_proposed",
        trace={"category": "out_of_scope"},
    )
    _say(carlas_chat, Sender.USER, "a person please")
    _say(carlas_chat, Sender.AI, "Connecting you.", outcome="handoff", trace={"category": "human"})
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked for a person")
    carlas_chat.refresh_from_db()
    return carlas_chat


@pytest.fixture
def answered(handed_off, agent):
    services.conversation_claim(conversation=handed_off, agent=agent)
    services.conversation_reply(conversation=handed_off, agent=agent, text="Let me check.")
    services.conversation_reply(conversation=handed_off, agent=agent, text=f"  {ANSWER}\n")
    handed_off.refresh_from_db()
    return handed_off


@pytest.fixture
def resolved(answered, agent):
    services.conversation_resolve(conversation=answered, agent=agent)
    answered.refresh_from_db()
    return answered


def _url(name, conversation, org="acme"):
    return reverse(name, args=[org, conversation.pk])


# --- Resolve with the mark ------------------------------------------------------------------
def test_it_resolves_with_the_mark_and_the_note(client, agent, answered):
    client.force_login(agent)
    response = client.post(
        _url("console_resolve", answered),
        {"bot_missed": "on", "bot_missed_note": "  Payment methods are missing  "},
        **HTMX,
    )
    assert response.status_code == 200
    answered.refresh_from_db()
    assert answered.status == Status.RESOLVED
    assert (answered.bot_missed, answered.bot_missed_note) == (True, "Payment methods are missing")
    html = response.content.decode()
    assert "Marked: the bot should have handled this: Payment methods are missing" in html
    assert 'id="save-faq-' in html, "a resolved conversation offers Save as an FAQ"


def test_it_resolves_without_the_mark_and_keeps_no_stray_note(client, agent, answered):
    client.force_login(agent)
    client.post(_url("console_resolve", answered), {"bot_missed_note": "typed, not ticked"}, **HTMX)
    answered.refresh_from_db()
    assert answered.status == Status.RESOLVED
    assert (answered.bot_missed, answered.bot_missed_note) == (False, "")


def test_a_note_too_long_is_refused_and_nothing_changes(client, agent, answered):
    client.force_login(agent)
    response = client.post(
        _url("console_resolve", answered),
        {"bot_missed": "on", "bot_missed_note": "x" * 2001},
        **HTMX,
    )
    assert response.status_code == 400
    assert "Keep the note under 2000 characters." in response.content.decode()
    answered.refresh_from_db()
    assert answered.status == Status.AWAITING and not answered.bot_missed


def test_the_console_offers_the_mark_when_resolving(client, agent, answered):
    client.force_login(agent)
    html = client.get(_url("console_conversation", answered)).content.decode()
    assert 'name="bot_missed"' in html and "The bot should have handled this" in html
    assert 'name="bot_missed_note"' in html
    assert 'id="save-faq-' not in html, "not before it is resolved"


# --- The FAQ draft --------------------------------------------------------------------------
def test_the_draft_is_the_question_the_bot_missed_and_the_agents_last_reply(resolved):
    assert learning.faq_draft(conversation=resolved) == {
        "question": "Can I pay with Bitcoin?",
        "answer": ANSWER,
    }


def test_without_a_bot_turn_the_draft_takes_the_customers_last_message(carlas_chat, agent):
    _say(carlas_chat, Sender.USER, "Hello")
    _say(carlas_chat, Sender.USER, "Do you ship   to Iceland?")
    _say(carlas_chat, Sender.AGENT, "internal thought", internal=True)
    _say(carlas_chat, Sender.AGENT, "Yes, in a week.", agent=agent)
    _say(carlas_chat, Sender.USER, "thanks!")
    assert learning.faq_draft(conversation=carlas_chat) == {
        "question": "Do you ship to Iceland?",
        "answer": "Yes, in a week.",
    }


def test_with_no_agent_reply_there_is_nothing_to_draft(handed_off):
    assert learning.faq_draft(conversation=handed_off) == {"question": "", "answer": ""}


# --- Save as an FAQ -------------------------------------------------------------------------
def test_the_form_is_drafted_for_a_resolved_conversation(client, agent, resolved):
    client.force_login(agent)
    response = client.get(_url("console_save_faq", resolved), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="Can I pay with Bitcoin?"' in html and ANSWER in html
    assert "Save FAQ" in html
    full = client.get(_url("console_save_faq", resolved)).content.decode()
    assert "<html" in full and "Save as an FAQ" in full and ANSWER in full


def test_an_agent_saves_it_and_the_team_source_syncs(
    client, agent, resolved, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("django_q.tasks.Conf.SYNC", True)  # the worker's code, in this process
    client.force_login(agent)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            _url("console_save_faq", resolved),
            {"question": "Can I pay with Bitcoin or crypto?", "answer": ANSWER},
            **HTMX,
        )
    assert response.status_code == 200
    assert "Saved to" in response.content.decode()
    saved = TeamAnswer.objects.get()
    assert (saved.bot, saved.conversation_id, saved.created_by) == (
        resolved.bot,
        resolved.pk,
        agent,
    )
    source = KnowledgeSource.objects.get(bot=resolved.bot, kind="team")
    assert source.status == "ready"
    assert Document.objects.get(source=source).title == "Can I pay with Bitcoin or crypto?"


def test_without_htmx_a_save_goes_back_to_the_form_page(client, agent, resolved):
    client.force_login(agent)
    url = _url("console_save_faq", resolved)
    response = client.post(url, {"question": "Bitcoin?", "answer": ANSWER})
    assert response.status_code == 302 and response.url == url
    assert "Saved “Bitcoin?” to Answers from the team." in client.get(url).content.decode()


@pytest.mark.parametrize(
    ("question", "answer", "error"),
    [
        ("", ANSWER, "Write the customer&#x27;s question."),
        ("Can I pay with Bitcoin?", "   ", "Write the answer the bot should give."),
    ],
)
def test_an_empty_field_is_refused_and_what_was_typed_is_kept(
    client, agent, resolved, question, answer, error
):
    client.force_login(agent)
    response = client.post(
        _url("console_save_faq", resolved), {"question": question, "answer": answer}, **HTMX
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert error in html and 'aria-invalid="true"' in html
    assert (f'value="{question}"' in html) and (answer.strip() in html)
    assert not TeamAnswer.objects.exists()


def test_a_conversation_not_yet_resolved_is_refused(client, agent, answered):
    client.force_login(agent)
    form = {"question": "Can I pay with Bitcoin?", "answer": ANSWER}
    response = client.post(_url("console_save_faq", answered), form, **HTMX)
    assert response.status_code == 409
    html = response.content.decode()
    assert "resolve it before saving its answer as an FAQ" in html
    assert ANSWER in html, "the agent's text is kept"
    assert not TeamAnswer.objects.exists()
    with pytest.raises(ConversationStateError):
        services.conversation_save_faq(conversation=answered, agent=answered.assigned_agent, **form)
    get = client.get(_url("console_save_faq", answered), **HTMX).content.decode()
    assert "Resolve the conversation before saving its answer." in get


def test_olga_of_globex_gets_a_404_and_nothing_is_saved(client, outsider, resolved):
    client.force_login(outsider)
    url = _url("console_save_faq", resolved)
    assert client.get(url, **HTMX).status_code == 404
    assert client.post(url, {"question": "Q?", "answer": "A."}, **HTMX).status_code == 404
    # Nor through her own organization's address.
    other = _url("console_save_faq", resolved, org="globex")
    assert client.post(other, {"question": "Q?", "answer": "A."}, **HTMX).status_code == 404
    assert client.get(_url("console_suggest", resolved)).status_code == 404
    assert not TeamAnswer.objects.exists()


def test_the_anonymous_are_sent_to_sign_in(client, resolved):
    for name in ("console_save_faq", "console_suggest"):
        response = client.get(_url(name, resolved))
        assert response.status_code == 302 and "/accounts/login/" in response.url
    assert (
        client.post(
            _url("console_save_faq", resolved), {"question": "Q", "answer": "A"}
        ).status_code
        == 302
    )
    assert not TeamAnswer.objects.exists()


def test_owners_and_admins_may_save_too(client, owner, admin_member, resolved):
    for member, question in ((owner, "Bitcoin?"), (admin_member, "Crypto?")):
        client.force_login(member)
        response = client.post(
            _url("console_save_faq", resolved), {"question": question, "answer": ANSWER}, **HTMX
        )
        assert response.status_code == 200
    assert TeamAnswer.objects.count() == 2


# --- The suggested reply --------------------------------------------------------------------
@pytest.fixture
def stocked_chat(carlas_chat):
    knowledge_services.source_upload(
        bot=carlas_chat.bot, filename="faq.csv", data=FAQ_CSV, sync_now=True
    )
    return carlas_chat


def test_the_suggestion_is_the_bots_own_answer_to_the_latest_message(carlas_chat):
    _say(carlas_chat, Sender.USER, "How long does shipping take?")
    _say(carlas_chat, Sender.AI, "3 to 5 business days.", outcome="answered")
    suggestion = learning.reply_suggestion(conversation=carlas_chat)
    assert (suggestion.text, suggestion.fresh) == ("3 to 5 business days.", False)


def test_the_suggestion_is_a_withheld_draft_when_the_bot_held_it_back(carlas_chat):
    _say(carlas_chat, Sender.USER, "Refund me now")
    _say(
        carlas_chat,
        Sender.AI,
        "Connecting you to a person.",
        outcome="handoff",
        trace={"unsent_text": "Refunds take 5 days."},
    )
    assert learning.reply_suggestion(conversation=carlas_chat).text == "Refunds take 5 days."


def test_a_message_that_came_while_people_had_it_is_drafted_now(stocked_chat, agent):
    _say(stocked_chat, Sender.USER, "hello, a person please")
    _say(stocked_chat, Sender.AI, "Connecting you.", outcome="handoff")
    _say(stocked_chat, Sender.AGENT, "Hi, Sam here.", agent=agent)
    latest = _say(stocked_chat, Sender.USER, "How long does shipping take?")
    suggestion = learning.reply_suggestion(conversation=stocked_chat)
    assert suggestion.fresh and suggestion.message_id == latest.pk
    assert "3 to 5 business days" in suggestion.text
    assert Message.objects.filter(conversation=stocked_chat).count() == 4, "nothing written"


def test_no_suggestion_when_the_bot_has_no_answer_or_a_person_already_replied(stocked_chat, agent):
    _say(stocked_chat, Sender.USER, "How long does shipping take?")
    _say(stocked_chat, Sender.AI, "Connecting you.", outcome="handoff")
    assert learning.reply_suggestion(conversation=stocked_chat) is None
    _say(stocked_chat, Sender.USER, "Can I return an item?")
    _say(stocked_chat, Sender.AGENT, "Yes, within 30 days.", agent=agent)
    assert learning.reply_suggestion(conversation=stocked_chat) is None


def test_the_console_loads_the_suggestion_with_an_insert_button(client, agent, carlas_chat):
    _say(carlas_chat, Sender.USER, "How long does shipping take?")
    _say(
        carlas_chat,
        Sender.AI,
        "3 to 5 business days.",
        outcome="handoff",
        trace={"unsent_text": "3 to 5 business days."},
    )
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    services.conversation_claim(conversation=carlas_chat, agent=agent)
    client.force_login(agent)
    pane = client.get(_url("console_conversation", carlas_chat)).content.decode()
    assert f'hx-get="{_url("console_suggest", carlas_chat)}" hx-trigger="load"' in pane
    html = client.get(_url("console_suggest", carlas_chat), **HTMX).content.decode()
    assert "3 to 5 business days." in html
    assert f'data-insert-into="reply-{carlas_chat.pk}"' in html and ">Insert</button>" in html


def test_drafting_a_reply_never_runs_the_bots_actions(carlas_chat, agent, settings):
    """The suggested reply is a draft for Sam: it must not call the business's systems, which
    an action anyone may use, without a card, would otherwise do for Carla's latest message."""
    from conversations.tests.pipeline.conftest import load_demo_knowledge
    from conversations.tests.shop_server import ShopServer, order_action

    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = True
    shop = ShopServer()
    try:
        load_demo_knowledge(carlas_chat.bot)
        order_action(bot=carlas_chat.bot, base_url=shop.url, audience="anyone", method="POST")
        _say(carlas_chat, Sender.USER, "a person please")
        _say(carlas_chat, Sender.AI, "Connecting you.", outcome="handoff")
        _say(carlas_chat, Sender.AGENT, "Hi, Sam here.", agent=agent)
        _say(carlas_chat, Sender.USER, "Where's my order 1234?")
        learning.reply_suggestion(conversation=carlas_chat)
        assert shop.requests == []
    finally:
        shop.stop()
