"""Notifications in admin: each organization sees its own, with why a send failed, and can
retry; owners can send their webhook a test message."""

from __future__ import annotations

import pytest
from django.urls import reverse

from escalation.models import Notification

pytestmark = pytest.mark.django_db

State = Notification.State


@pytest.fixture
def queued(monkeypatch):
    calls = []
    monkeypatch.setattr("escalation.tasks.async_task", lambda func, pk, **kw: calls.append(pk))
    return calls


@pytest.fixture
def failed_notifications(acme, globex, carlas_chat):
    acme_row = Notification.objects.create(
        organization=acme,
        conversation=carlas_chat,
        kind="webhook",
        target="https://hooks.slack.com/services/ACME",
        body="Urgent: Carla is waiting",
        state=State.GAVE_UP,
        attempts=6,
        last_error="Attempt 6 of 6: The webhook answered 404 Not Found: no_service",
    )
    globex_row = Notification.objects.create(
        organization=globex,
        kind="email",
        target="olga@globex.example",
        body="Gus is waiting",
        state=State.FAILED,
        attempts=1,
        last_error="Attempt 1 of 6: The mail server refused or could not be reached.",
    )
    return acme_row, globex_row


def test_an_owner_sees_their_notifications_and_why_they_failed(client, owner, failed_notifications):
    client.force_login(owner)
    body = client.get(reverse("admin:escalation_notification_changelist")).content.decode()
    assert "hooks.slack.com/services/ACME" in body
    assert "The webhook answered 404 Not Found: no_service" in body
    assert "olga@globex.example" not in body


def test_the_list_filters_by_state(client, owner, acme, failed_notifications):
    Notification.objects.create(
        organization=acme, kind="email", target="ada@acme.example", body="x", state=State.SENT
    )
    client.force_login(owner)
    url = reverse("admin:escalation_notification_changelist")
    body = client.get(url, {"state__exact": "sent"}).content.decode()
    assert "ada@acme.example" in body
    assert "hooks.slack.com" not in body


def test_an_owner_cannot_open_another_organizations_notification(
    client, outsider, failed_notifications
):
    client.force_login(outsider)
    acme_row, _ = failed_notifications
    response = client.get(reverse("admin:escalation_notification_change", args=[acme_row.pk]))
    assert response.status_code == 302  # "doesn't exist", as for any row outside the tenant


def test_retry_now_queues_the_rows_again(
    client, owner, failed_notifications, queued, django_capture_on_commit_callbacks
):
    acme_row, _ = failed_notifications
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:escalation_notification_changelist"),
            {"action": "retry_now", "_selected_action": [acme_row.pk]},
            follow=True,
        )
    assert "1 notification queued to be sent again." in response.content.decode()
    acme_row.refresh_from_db()
    assert acme_row.state == State.FAILED and acme_row.next_attempt_at is not None
    assert queued == [acme_row.pk]


def test_retry_now_cannot_reach_another_organizations_rows(
    client, outsider, failed_notifications, queued
):
    acme_row, _ = failed_notifications
    client.force_login(outsider)
    client.post(
        reverse("admin:escalation_notification_changelist"),
        {"action": "retry_now", "_selected_action": [acme_row.pk]},
    )
    acme_row.refresh_from_db()
    assert acme_row.state == State.GAVE_UP
    assert queued == []


def test_an_owner_sets_the_webhook_and_sends_a_test_message(
    client, owner, acme, queued, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    change = reverse("admin:bots_organization_change", args=[acme.pk])
    assert 'name="webhook_url"' in client.get(change).content.decode()
    client.post(
        change,
        {"name": "Acme", "slug": "acme", "webhook_url": "https://discord.com/api/webhooks/1/x"},
    )
    acme.refresh_from_db()
    assert acme.webhook_url == "https://discord.com/api/webhooks/1/x"

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:bots_organization_changelist"),
            {"action": "send_test_message", "_selected_action": [acme.pk]},
            follow=True,
        )
    assert "Test message queued for Acme" in response.content.decode()
    (row,) = Notification.objects.filter(organization=acme)
    assert (row.kind, row.target, row.conversation) == (
        "webhook",
        "https://discord.com/api/webhooks/1/x",
        None,
    )
    assert queued == [row.pk]
