"""Two agents claim one conversation at the same instant, each on its own database connection:
the row lock lets exactly one win, and the other is told who did."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import close_old_connections

from conversations.models import Conversation
from conversations.services import ConversationStateError
from conversations.tests.factories import ConversationFactory
from escalation import services as escalation_services

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_agents_claiming_at_once_exactly_one_wins(agent, admin_member, carla, monkeypatch):
    conversation = ConversationFactory(customer=carla, status=Conversation.Status.WAITING)
    take = escalation_services._take

    def slow_take(*args, **kwargs):
        # The winner holds the row lock a moment longer, so the loser's claim surely waits on
        # it rather than running after the winner committed.
        take(*args, **kwargs)
        time.sleep(0.3)

    monkeypatch.setattr(escalation_services, "_take", slow_take)
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def claim(user):
        try:
            # Its own instance and, in this thread, its own connection.
            mine = Conversation.objects.get(pk=conversation.pk)
            barrier.wait(timeout=10)
            escalation_services.conversation_claim(conversation=mine, agent=user)
            results[user.display_name] = "won"
        except ConversationStateError as exc:
            results[user.display_name] = str(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=claim, args=(u,)) for u in (agent, admin_member)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert sorted(results) == ["Ian", "Sam"]
    winners = [name for name, outcome in results.items() if outcome == "won"]
    assert len(winners) == 1
    [loser] = [name for name in results if name not in winners]
    assert results[loser] == f"{winners[0]} already took this conversation."
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.ACTIVE
    assert conversation.assigned_agent.display_name == winners[0]
    assert conversation.messages.filter(text__endswith="joined the chat").count() == 1
    assert conversation.transitions.filter(to_status="active").count() == 1
