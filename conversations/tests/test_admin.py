"""Conversations in Django admin are tenant data: an owner sees their own organization's, never
another's, and changes only what the services allow."""

import pytest
from django.urls import reverse

from conversations.tests.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_an_owner_sees_only_their_organizations_conversations(client, owner, carlas_chat, gus):
    ConversationFactory(customer=gus)
    client.force_login(owner)
    body = client.get(reverse("admin:conversations_conversation_changelist")).content.decode()
    assert "Carla" in body
    assert "Gus" not in body


def test_another_organizations_owner_does_not_see_acme_conversations(
    client, outsider, carlas_chat, gus
):
    ConversationFactory(customer=gus)
    client.force_login(outsider)
    body = client.get(reverse("admin:conversations_conversation_changelist")).content.decode()
    assert "Gus" in body
    assert "Carla" not in body
    # The bot filter lists only bots in the owner's own list, not Acme's.
    assert "Acme Support" not in body


def test_another_organizations_owner_cannot_open_an_acme_conversation(
    client, outsider, carlas_chat
):
    MessageFactory(conversation=carlas_chat, text="My address is 1 Main St")
    client.force_login(outsider)
    response = client.get(reverse("admin:conversations_conversation_change", args=[carlas_chat.pk]))
    assert response.status_code == 302  # Django admin's "doesn't exist" redirect
    assert "1 Main St" not in client.get(response.url).content.decode()


def test_an_owner_reads_the_messages_of_a_conversation(client, owner, carlas_chat):
    MessageFactory(conversation=carlas_chat, text="Where is my parcel?")
    client.force_login(owner)
    response = client.get(reverse("admin:conversations_conversation_change", args=[carlas_chat.pk]))
    assert response.status_code == 200
    assert "Where is my parcel?" in response.content.decode()


def test_an_owner_changes_the_priority_but_not_the_status(
    client, owner, carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:conversations_conversation_change", args=[carlas_chat.pk]),
            {
                "priority": "urgent",
                "status": "closed",
                "messages-TOTAL_FORMS": "0",
                "messages-INITIAL_FORMS": "0",
                "action_calls-TOTAL_FORMS": "0",
                "action_calls-INITIAL_FORMS": "0",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    carlas_chat.refresh_from_db()
    assert (carlas_chat.priority, carlas_chat.status) == ("urgent", "ai")
    assert [event for _, event, _ in broadcasts] == ["conversation.updated"]


def test_an_owner_cannot_add_conversations_in_admin(client, owner):
    client.force_login(owner)
    response = client.get(reverse("admin:conversations_conversation_add"))
    assert response.status_code == 403


def test_another_organizations_owner_does_not_see_acme_customers(client, outsider, carla, gus):
    client.force_login(outsider)
    body = client.get(reverse("admin:conversations_customer_changelist")).content.decode()
    assert "Gus" in body
    assert "Carla" not in body
    response = client.get(reverse("admin:conversations_customer_change", args=[carla.pk]))
    assert response.status_code == 302


def test_an_owner_views_but_does_not_edit_a_customer(client, owner, carla):
    client.force_login(owner)
    url = reverse("admin:conversations_customer_change", args=[carla.pk])
    assert "Carla" in client.get(url).content.decode()
    assert client.post(url, {"name": "Mallory"}).status_code == 403
    carla.refresh_from_db()
    assert carla.name == "Carla"


def test_agents_have_no_conversation_admin(client, agent, carlas_chat):
    client.force_login(agent)
    response = client.get(reverse("admin:conversations_conversation_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response.url


def test_an_owner_reads_the_bots_action_calls_of_a_conversation(client, owner, carlas_chat):
    from conversations.models import ActionCall

    ActionCall.objects.create(
        conversation=carlas_chat,
        name="lookup_order",
        arguments={"order_id": "1234"},
        state="done",
        outcome="failed",
        record={"name": "lookup_order", "outcome": "failed", "error": "timeout"},
    )
    client.force_login(owner)
    response = client.get(reverse("admin:conversations_conversation_change", args=[carlas_chat.pk]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "lookup_order" in body and "timeout" in body
