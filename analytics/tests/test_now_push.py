"""The dashboard's "Now" tile, pushed to the organization after a conversation moves, through
the one push path (config.realtime), as the console's queue is."""

from __future__ import annotations

import pytest
from django.utils import timezone

from conversations import services as conversation_services
from conversations.tests.factories import ConversationFactory
from escalation import services as escalation_services

pytestmark = pytest.mark.django_db


def _now_pushes(broadcasts):
    return [(group, payload) for group, event, payload in broadcasts if event == "analytics.now"]


def test_a_handoff_pushes_the_tile_to_the_organization_after_commit(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        escalation_services.escalation_request(conversation=carlas_chat, reason="Asked")
    assert _now_pushes(broadcasts) == []  # nothing before the handoff is durable
    for callback in callbacks:
        callback()
    [(group, payload)] = _now_pushes(broadcasts)
    assert group == f"org.{carlas_chat.bot.organization_id}"
    html = payload["html"]
    assert html.lstrip().startswith('<section id="analytics-now"')
    assert 'hx-swap-oob="true"' in html
    assert 'data-figure="waiting">1<' in html


def test_a_claim_pushes_the_tile_once_with_the_queue_empty(
    carlas_chat, agent, broadcasts, django_capture_on_commit_callbacks
):
    escalation_services.escalation_request(conversation=carlas_chat, reason="Asked")
    broadcasts.clear()
    with django_capture_on_commit_callbacks(execute=True):
        # A claim writes several changes (the move, the agent, a system message): one push.
        escalation_services.conversation_claim(conversation=carlas_chat, agent=agent)
    [(_group, payload)] = _now_pushes(broadcasts)
    assert 'data-figure="waiting">0<' in payload["html"]


def test_a_bots_chat_pushes_no_tile_on_every_message(
    carlas_chat, broadcasts, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        conversation_services.message_add_user(conversation=carlas_chat, text="Hello there")
    assert _now_pushes(broadcasts) == []


def test_a_playground_test_pushes_nothing(carla, broadcasts, django_capture_on_commit_callbacks):
    test = ConversationFactory(customer=carla, channel="playground")
    with django_capture_on_commit_callbacks(execute=True):
        escalation_services.escalation_request(conversation=test, reason="Trying the handoff")
    assert _now_pushes(broadcasts) == []


def test_the_tile_counts_only_its_own_organization(
    carlas_chat, gus, broadcasts, django_capture_on_commit_callbacks
):
    ConversationFactory(customer=gus, status="waiting", handoff_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        escalation_services.escalation_request(conversation=carlas_chat, reason="Asked")
    [(group, payload)] = _now_pushes(broadcasts)
    assert group == f"org.{carlas_chat.bot.organization_id}"
    assert 'data-figure="waiting">1<' in payload["html"]
