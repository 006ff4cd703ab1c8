"""Agents' actions and the console's lists on conversations awaiting the customer, an agent's
resolve recording who resolved it, and the customer's "No" per the bot's setting."""

from __future__ import annotations

import pytest
from django.urls import reverse

from bots.models import Bot, Membership
from conversations.models import Conversation, Message
from conversations.services import (
    ConversationStateError,
    conversation_rate,
    message_add_user,
    message_complete,
    message_start_bot,
)
from escalation import selectors
from escalation import services as escalation_services
from escalation.models import EscalationLog

pytestmark = pytest.mark.django_db

Status = Conversation.Status
SOURCE = [{"n": 1, "chunk_id": 1, "document_id": 1, "title": "Passwords", "url": ""}]


@pytest.fixture
def answered(carlas_chat):
    """The bot answered Carla: awaiting her, with the bot."""
    question, _ = message_add_user(conversation=carlas_chat, text="How do I reset my password?")
    reply = message_start_bot(conversation=carlas_chat, reply_to=question)
    message_complete(message=reply, text="Settings.", outcome="answered", citations=SOURCE)
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AWAITING
    return carlas_chat


@pytest.fixture
def replied(carlas_chat, agent):
    """Sam took Carla's conversation and replied: awaiting her, with Sam."""
    message_add_user(conversation=carlas_chat, text="I need a person")
    escalation_services.conversation_take_over(conversation=carlas_chat, agent=agent)
    escalation_services.conversation_reply(conversation=carlas_chat, agent=agent, text="Hi!")
    carlas_chat.refresh_from_db()
    assert carlas_chat.status == Status.AWAITING and carlas_chat.assigned_agent == agent
    return carlas_chat


def _membership(user):
    return Membership.objects.get(user=user)


def test_mine_lists_conversations_awaiting_the_customer_after_my_reply(replied, agent, owner):
    assert list(selectors.mine_list(membership=_membership(agent))) == [replied]
    assert list(selectors.mine_list(membership=_membership(owner))) == []
    assert replied not in list(selectors.with_bot_list(membership=_membership(agent)))


def test_with_the_bot_lists_conversations_awaiting_the_customer_after_the_bots_answer(
    answered, agent
):
    assert list(selectors.with_bot_list(membership=_membership(agent))) == [answered]
    assert list(selectors.mine_list(membership=_membership(agent))) == []


def test_the_agent_replies_again_while_awaiting_the_customer(replied, agent):
    escalation_services.conversation_reply(conversation=replied, agent=agent, text="Still there?")
    replied.refresh_from_db()
    assert replied.status == Status.AWAITING and replied.assigned_agent == agent


def test_a_colleague_cannot_reply_or_claim_a_conversation_awaiting_sams_customer(
    replied, admin_member
):
    with pytest.raises(ConversationStateError, match="Sam has this conversation"):
        escalation_services.conversation_reply(conversation=replied, agent=admin_member, text="x")
    with pytest.raises(ConversationStateError, match="Sam already took"):
        escalation_services.conversation_claim(conversation=replied, agent=admin_member)


def test_an_agent_resolves_a_conversation_awaiting_the_customer_as_resolved_by_an_agent(
    replied, agent
):
    escalation_services.conversation_resolve(conversation=replied, agent=agent)
    replied.refresh_from_db()
    assert replied.status == Status.RESOLVED and replied.resolution == "agent"
    assert not EscalationLog.objects.filter(conversation=replied, resolved_at=None).exists()
    conversation_rate(conversation=replied, score=4)  # asked after an agent's resolution too
    replied.refresh_from_db()
    assert replied.csat == 4


def test_transfer_and_return_to_bot_work_while_awaiting_the_customer(replied, agent, owner):
    escalation_services.conversation_transfer(conversation=replied, agent=agent, to_agent=owner)
    replied.refresh_from_db()
    assert replied.status == Status.AWAITING and replied.assigned_agent == owner
    last = replied.transitions.last()
    assert (last.from_status, last.to_status) == ("awaiting_customer", "awaiting_customer")
    escalation_services.conversation_return_to_bot(conversation=replied, agent=owner)
    replied.refresh_from_db()
    assert replied.status == Status.AI and replied.assigned_agent is None


def test_a_transfer_to_a_queue_puts_it_back_in_the_queue(replied, agent):
    escalation_services.conversation_transfer(conversation=replied, agent=agent, to_queue="tier2")
    replied.refresh_from_db()
    assert replied.status == Status.WAITING and replied.queue == "tier2"


def test_the_agents_awaiting_conversations_count_against_capacity(replied, agent, dan):
    Membership.objects.filter(user=agent).update(capacity=1)
    other = Conversation.objects.create(bot=dan.bot, customer=dan)
    message_add_user(conversation=other, text="Hello")
    with pytest.raises(ConversationStateError, match="limit of 1"):
        escalation_services.conversation_take_over(conversation=other, agent=agent)


def test_an_agent_takes_over_a_conversation_awaiting_the_customer_with_the_bot(answered, agent):
    escalation_services.conversation_take_over(conversation=answered, agent=agent)
    answered.refresh_from_db()
    assert answered.status == Status.ACTIVE and answered.assigned_agent == agent
    steps = [(t.from_status, t.to_status) for t in answered.transitions.all()]
    assert steps[-2:] == [("awaiting_customer", "waiting"), ("waiting", "active")]
    assert EscalationLog.objects.get(conversation=answered).trigger == "agent_takeover"


def test_claim_refuses_a_conversation_awaiting_the_customer_with_the_bot(answered, agent):
    with pytest.raises(ConversationStateError, match="take it over"):
        escalation_services.conversation_claim(conversation=answered, agent=agent)


def test_no_hands_off_at_once_when_the_bot_says_so(answered):
    Bot.objects.filter(pk=answered.bot_id).update(not_answered="handoff")
    answered.bot.refresh_from_db()
    reply = answered.messages.filter(sender=Message.Sender.AI).last()
    escalation_services.conversation_answer_rejected(conversation=answered, message_id=reply.pk)
    answered.refresh_from_db()
    reply.refresh_from_db()
    assert answered.status == Status.WAITING and reply.confirmed is False
    log = EscalationLog.objects.get(conversation=answered)
    assert log.trigger == "not_answered" and log.message == reply.reply_to


def test_no_offers_a_person_by_default(answered):
    reply = answered.messages.filter(sender=Message.Sender.AI).last()
    escalation_services.conversation_answer_rejected(conversation=answered, message_id=reply.pk)
    answered.refresh_from_db()
    assert answered.status == Status.AWAITING
    assert answered.messages.last().extras == {"offer_human": True}
    assert not EscalationLog.objects.filter(conversation=answered).exists()


# --- The console's pane and lists ---------------------------------------------------------------
def _pane(client, user, conversation) -> str:
    client.force_login(user)
    url = reverse("console_conversation", args=["acme", conversation.pk])
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_the_pane_keeps_the_agents_actions_and_composer_while_awaiting_the_customer(
    client, replied, agent
):
    html = _pane(client, agent, replied)
    assert "Waiting for the customer: Sam" in html
    assert ">Resolve</button>" in html and ">Return to bot</button>" in html
    assert f'id="reply-{replied.pk}"' in html and ">Take over</button>" not in html


def test_the_pane_offers_take_over_while_awaiting_the_customer_with_the_bot(
    client, answered, agent
):
    html = _pane(client, agent, answered)
    assert "Waiting for the customer" in html and ">Take over</button>" in html
    assert ">Resolve</button>" not in html and f'id="reply-{answered.pk}"' not in html


def test_the_console_lists_awaiting_conversations_under_mine_and_with_the_bot(
    client, replied, agent, dan
):
    other = Conversation.objects.create(bot=dan.bot, customer=dan)
    question, _ = message_add_user(conversation=other, text="Do you ship abroad?")
    reply = message_start_bot(conversation=other, reply_to=question)
    message_complete(message=reply, text="Yes.", outcome="answered", citations=SOURCE)
    client.force_login(agent)
    response = client.get(reverse("console", args=["acme"]))
    mine, with_bot = response.context["mine"], response.context["with_bot"]
    assert list(mine) == [replied] and list(with_bot) == [other]
