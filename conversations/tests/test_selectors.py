"""Reads are scoped: a customer sees only their own conversations, a member only their
organization's, and everyone else gets a 404."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.http import Http404

from conversations.models import Conversation, Message
from conversations.selectors import (
    conversation_get_for_customer,
    conversation_get_for_member,
    conversation_list_for_member,
    conversation_window,
    customer_history,
    messages_after,
)
from conversations.tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_a_customer_gets_their_own_conversation(carla, carlas_chat):
    assert conversation_get_for_customer(customer=carla, conversation_id=carlas_chat.pk) == (
        carlas_chat
    )


def test_a_customer_cannot_fetch_another_customers_conversation(dan, carlas_chat):
    with pytest.raises(Http404):
        conversation_get_for_customer(customer=dan, conversation_id=carlas_chat.pk)


def test_a_member_gets_their_organizations_conversation(agent, carlas_chat):
    assert conversation_get_for_member(user=agent, conversation_id=carlas_chat.pk) == carlas_chat


def test_another_organizations_owner_gets_404_for_an_acme_conversation(outsider, carlas_chat):
    with pytest.raises(Http404):
        conversation_get_for_member(user=outsider, conversation_id=carlas_chat.pk)


def test_a_signed_out_visitor_gets_404(carlas_chat):
    with pytest.raises(Http404):
        conversation_get_for_member(user=AnonymousUser(), conversation_id=carlas_chat.pk)


def test_a_member_lists_only_their_organizations_conversations(owner, acme, carlas_chat, gus):
    ConversationFactory(customer=gus)
    waiting = ConversationFactory(customer=carlas_chat.customer, status="waiting")
    assert set(conversation_list_for_member(user=owner, organization=acme)) == {
        carlas_chat,
        waiting,
    }
    assert list(conversation_list_for_member(user=owner, organization=acme, status="waiting")) == [
        waiting
    ]


def test_listing_another_organizations_conversations_is_a_404(outsider, acme, carlas_chat):
    with pytest.raises(Http404):
        conversation_list_for_member(user=outsider, organization=acme)


def test_it_lists_messages_after_an_id_oldest_first(carlas_chat):
    first, second, third = MessageFactory.create_batch(3, conversation=carlas_chat)
    MessageFactory(conversation=ConversationFactory(customer=carlas_chat.customer))
    assert messages_after(conversation=carlas_chat) == [first, second, third]
    assert messages_after(conversation=carlas_chat, after_id=first.pk) == [second, third]
    assert messages_after(conversation=carlas_chat, after_id=first.pk, limit=1) == [second]


def test_the_window_is_the_last_complete_messages_in_order(carlas_chat):
    messages = MessageFactory.create_batch(5, conversation=carlas_chat)
    MessageFactory(conversation=carlas_chat, sender="ai", state=Message.State.PENDING)
    MessageFactory(conversation=carlas_chat, sender="ai", state=Message.State.FAILED)
    assert conversation_window(conversation=carlas_chat, turns=3) == messages[2:]


def test_a_verified_customer_brings_their_previous_conversations(vera, django_assert_num_queries):
    older = ConversationFactory(customer=vera)
    said = MessageFactory(conversation=older, text="My order 1234 never came")
    MessageFactory(conversation=older, sender="ai", state=Message.State.FAILED)
    newer = ConversationFactory(customer=vera)
    current = ConversationFactory(customer=vera)
    with django_assert_num_queries(2):  # the conversations, then all their messages
        history = customer_history(customer=vera, exclude_conversation_id=current.pk)
        assert history == [newer, older]
        assert list(history[1].messages.all()) == [said]  # complete messages only


def test_history_is_limited_to_the_latest_conversations(vera):
    conversations = ConversationFactory.create_batch(5, customer=vera)
    assert customer_history(customer=vera, limit=2) == conversations[:-3:-1]


def test_an_anonymous_customer_has_no_history(carla, carlas_chat):
    ConversationFactory(customer=carla, status=Conversation.Status.CLOSED)
    assert customer_history(customer=carla, exclude_conversation_id=carlas_chat.pk) == []
