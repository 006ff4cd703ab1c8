"""Data migrations of conversations, run forward on rows made as the previous code made them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from conversations.models import Conversation, Customer
from conversations.tests.factories import ConversationFactory, CustomerFactory, MessageFactory

BEFORE = [("conversations", "0003_escalation_fields")]
AFTER = [("conversations", "0004_delete_empty_conversations")]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.mark.django_db(transaction=True)
def test_it_deletes_the_empty_conversations_hello_left_and_keeps_every_other(carla, dan):
    _migrate(BEFORE)
    old = timezone.now() - timedelta(days=2)
    empty = ConversationFactory(customer=carla)
    chat = ConversationFactory(customer=carla)
    MessageFactory(conversation=chat, text="Hi")
    rated = ConversationFactory(customer=carla, csat=4)
    new_empty = ConversationFactory(customer=carla)  # a socket may be about to use it
    lurker = CustomerFactory(bot=carla.bot, visitor_id="only-looked-1")
    lurker_chat = ConversationFactory(customer=lurker)
    just_arrived = CustomerFactory(bot=carla.bot, visitor_id="just-arrived-1")
    Conversation.objects.filter(pk__in=[empty.pk, chat.pk, rated.pk, lurker_chat.pk]).update(
        created_at=old
    )
    Customer.objects.filter(pk__in=[carla.pk, dan.pk, lurker.pk]).update(created_at=old)

    _migrate(AFTER)

    assert set(Conversation.objects.values_list("pk", flat=True)) == {
        chat.pk,
        rated.pk,
        new_empty.pk,
    }
    # Dan never had a conversation; the lurker's only one was empty.
    assert set(Customer.objects.values_list("pk", flat=True)) == {carla.pk, just_arrived.pk}
