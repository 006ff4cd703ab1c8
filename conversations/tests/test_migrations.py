"""Data migrations of conversations, run forward on rows made as the previous code made them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from conversations.models import Conversation, Customer
from conversations.tests.factories import CustomerFactory

BEFORE = [("conversations", "0003_escalation_fields")]
AFTER = [("conversations", "0004_delete_empty_conversations")]


def _migrate(targets):
    """Migrate to `targets`; returns the models as they were there (rows made with today's
    models would name columns those migrations do not have yet)."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def migrated_back():
    """Leaves the schema at the latest migrations again, for the tests after this one."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_it_deletes_the_empty_conversations_hello_left_and_keeps_every_other(
    carla, dan, migrated_back
):
    apps = _migrate(BEFORE)
    Old = apps.get_model("conversations", "Conversation")

    def conversation(customer, **fields):
        return Old.objects.create(bot_id=customer.bot_id, customer_id=customer.pk, **fields)

    old = timezone.now() - timedelta(days=2)
    empty = conversation(carla)
    chat = conversation(carla)
    apps.get_model("conversations", "Message").objects.create(
        conversation_id=chat.pk, sender="user", text="Hi"
    )
    rated = conversation(carla, csat=4)
    new_empty = conversation(carla)  # a socket may be about to use it
    lurker = CustomerFactory(bot=carla.bot, visitor_id="only-looked-1")
    lurker_chat = conversation(lurker)
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


@pytest.mark.django_db(transaction=True)
def test_resolved_conversations_before_outcomes_were_resolved_by_agents(carla, migrated_back):
    # Until the bot could resolve (issue 14), only an agent's Resolve made one resolved.
    apps = _migrate([("conversations", "0004_delete_empty_conversations")])
    Old = apps.get_model("conversations", "Conversation")
    resolved = Old.objects.create(bot_id=carla.bot_id, customer_id=carla.pk, status="resolved")
    open_one = Old.objects.create(bot_id=carla.bot_id, customer_id=carla.pk, status="ai")

    # Read with the model as 0005 left it: today's has columns later migrations add.
    New = _migrate([("conversations", "0005_outcomes")]).get_model("conversations", "Conversation")

    assert New.objects.get(pk=resolved.pk).resolution == "agent"
    assert New.objects.get(pk=open_one.pk).resolution == ""
