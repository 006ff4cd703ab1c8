"""escalation.tasks through django-q2 itself (its in-process sync mode): the paths the
worker and the schedules call resolve, and a handoff's e-mail goes out after commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from conversations.models import Conversation
from escalation import tasks
from escalation.models import Notification
from escalation.services import escalation_open

pytestmark = pytest.mark.django_db


def test_a_high_handoff_is_emailed_by_the_worker_after_commit(
    carlas_chat, owner, monkeypatch, mailoutbox, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("django_q.tasks.Conf.SYNC", True)  # the worker's code, in this process
    with django_capture_on_commit_callbacks(execute=True):
        escalation_open(
            conversation=carlas_chat, trigger="keywords", reason="Fraud", priority="high"
        )
        assert mailoutbox == [], "nothing is sent before commit"
    (mail,) = mailoutbox
    assert mail.to == ["ada@acme.example"]
    assert Notification.objects.get().state == Notification.State.SENT


def test_the_schedules_exist_and_call_the_sweeps(carlas_chat, owner, monkeypatch):
    funcs = set(Schedule.objects.values_list("func", flat=True))
    assert {
        "escalation.tasks.notifications_send_due",
        "escalation.tasks.conversations_raise_overdue",
    } <= funcs
    monkeypatch.setattr("escalation.tasks.async_task", lambda *a, **kw: None)
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    Conversation.objects.filter(pk=carlas_chat.pk).update(
        response_due_at=timezone.now() - timedelta(seconds=1)
    )
    assert tasks.conversations_raise_overdue() == 1
    Notification.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    assert tasks.notifications_send_due() == 1
