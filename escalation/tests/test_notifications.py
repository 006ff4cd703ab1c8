"""escalation.notifications: who is told of a high or urgent handoff, what they read, and
delivery with retries (e-mail through Django's mail, chat webhooks to a local server)."""

from __future__ import annotations

import smtplib
import socket
import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from bots.models import Membership
from escalation import notifications, tasks
from escalation.models import Notification
from escalation.notifications import (
    notification_send,
    notifications_for_conversation,
    notifications_retry,
    notifications_send_due,
)
from escalation.services import escalation_open
from escalation.tests.webhook_server import WebhookServer

pytestmark = pytest.mark.django_db

State = Notification.State


@pytest.fixture
def queued(monkeypatch):
    """Notification ids handed to the worker (django_q's async_task), in order."""
    calls = []
    monkeypatch.setattr(
        "escalation.tasks.async_task", lambda func, pk, **kw: calls.append((func, pk))
    )
    return calls


@pytest.fixture
def webhook(settings):
    # The test server is on 127.0.0.1, which the address check otherwise refuses.
    settings.NOTIFY_WEBHOOK_PRIVATE_NETWORKS = True
    server = WebhookServer()
    yield server
    server.close()


def _serve(membership_user, organization, queues):
    Membership.objects.filter(user=membership_user, organization=organization).update(queues=queues)


def _escalate(conversation, priority="high", queue="tier1", reason="Legal threat"):
    return escalation_open(
        conversation=conversation,
        trigger="keywords",
        reason=reason,
        priority=priority,
        queue=queue,
    )


def _email(conversation) -> Notification:
    return Notification.objects.get(conversation=conversation, kind="email")


def _make_due(notification: Notification) -> None:
    Notification.objects.filter(pk=notification.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


# --- Recipients -------------------------------------------------------------------------------
def test_it_emails_the_members_who_serve_the_queue(
    carlas_chat, acme, owner, admin_member, agent, queued
):
    _serve(agent, acme, ["tier1"])
    _serve(admin_member, acme, ["tier2", "manager"])
    _escalate(carlas_chat, priority="urgent", queue="tier2")
    # Ada serves every queue (the default), Ian serves tier 2; Sam only tier 1.
    assert _email(carlas_chat).target == "ada@acme.example,ian@acme.example"


def test_a_member_of_another_organization_is_never_notified(
    carlas_chat, acme, owner, outsider, globex, gus, queued
):
    # Olga (Globex) serves every queue and Globex has a webhook: neither hears of Acme's chat.
    globex.webhook_url = "https://hooks.slack.com/services/GLOBEX"
    globex.save(update_fields=["webhook_url"])
    assert Membership.objects.get(user=outsider).queues == ["tier1", "tier2", "manager"]
    _escalate(carlas_chat, priority="urgent")
    rows = Notification.objects.filter(conversation=carlas_chat)
    assert [(n.kind, n.target) for n in rows] == [("email", "ada@acme.example")]
    assert all(n.organization == acme for n in rows)
    assert not any("globex" in n.target for n in Notification.objects.all())

    # And the other way round: Globex's conversation tells Olga and Globex's webhook only.
    from conversations.tests.factories import ConversationFactory

    _escalate(ConversationFactory(customer=gus), priority="high")
    targets = set(Notification.objects.filter(organization=globex).values_list("target", flat=True))
    assert targets == {"olga@globex.example", "https://hooks.slack.com/services/GLOBEX"}


def test_a_user_in_both_organizations_is_notified_only_through_the_membership_that_serves(
    carlas_chat, acme, globex, outsider, queued
):
    # Olga joins Acme serving only the manager queue; she serves tier 1 at Globex, which must
    # not count for Acme's tier 1 conversation.
    Membership.objects.create(user=outsider, organization=acme, role="agent", queues=["manager"])
    _escalate(carlas_chat, priority="high", queue="tier1")
    assert not Notification.objects.filter(conversation=carlas_chat, kind="email").exists()


def test_low_and_medium_handoffs_notify_nobody(carlas_chat, dan, acme, owner, queued):
    from conversations.tests.factories import ConversationFactory

    acme.webhook_url = "https://hooks.slack.com/services/ACME"
    acme.save(update_fields=["webhook_url"])
    _escalate(carlas_chat, priority="medium")
    _escalate(ConversationFactory(customer=dan), priority="low")
    assert not Notification.objects.exists()


def test_members_without_email_or_inactive_are_skipped(carlas_chat, acme, owner, agent, queued):
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    _escalate(carlas_chat, priority="high")
    assert _email(carlas_chat).target == "sam@acme.example"


def test_a_large_queue_is_split_over_emails_that_fit_the_target(carlas_chat, acme, queued):
    from bots.tests.factories import UserFactory

    for i in range(40):
        user = UserFactory(email=f"agent-number-{i:02d}@acme.example")
        Membership.objects.create(user=user, organization=acme)
    _escalate(carlas_chat, priority="high")
    rows = Notification.objects.filter(conversation=carlas_chat, kind="email")
    addresses = [a for n in rows for a in n.target.split(",")]
    assert len(rows) > 1 and all(len(n.target) <= 500 for n in rows)
    assert sorted(addresses) == sorted(f"agent-number-{i:02d}@acme.example" for i in range(40))


# --- Queued to the worker after commit --------------------------------------------------------
def test_rows_are_queued_to_the_worker_only_after_commit(
    carlas_chat, acme, owner, queued, django_capture_on_commit_callbacks
):
    acme.webhook_url = "https://hooks.slack.com/services/ACME"
    acme.save(update_fields=["webhook_url"])
    with django_capture_on_commit_callbacks(execute=True):
        _escalate(carlas_chat, priority="urgent")
        assert queued == []
    ids = sorted(Notification.objects.values_list("pk", flat=True))
    assert len(ids) == 2
    assert sorted(pk for _, pk in queued) == ids
    assert {func for func, _ in queued} == {"escalation.tasks.notification_send"}


def test_the_task_returns_quietly_when_the_row_is_gone(mailoutbox):
    tasks.notification_send(987654)
    assert mailoutbox == []


# --- E-mail -----------------------------------------------------------------------------------
def test_the_email_names_bot_customer_priority_queue_reason_and_links_the_console(
    carlas_chat, acme, owner, queued, mailoutbox, settings
):
    settings.SITE_URL = "https://support.example.com"
    _escalate(carlas_chat, priority="urgent", queue="tier2", reason="Legal threat: lawyer")
    notification = _email(carlas_chat)
    assert notification_send(notification=notification) is True

    (mail,) = mailoutbox
    assert mail.to == ["ada@acme.example"]
    assert mail.subject == "[Urgent] Carla is waiting for a person (Acme Support)"
    assert "Priority: Urgent" in mail.body
    assert "Queue: Tier 2" in mail.body
    assert "Bot: Acme Support" in mail.body
    assert "Reason: Legal threat: lawyer" in mail.body
    link = f"https://support.example.com/o/acme/console/c/{carlas_chat.pk}/"
    assert link in mail.body
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (State.SENT, 1)
    assert notification.sent_at is not None


class RefusingBackend:
    """An SMTP server that refuses every message."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise smtplib.SMTPRecipientsRefused({"ada@acme.example": (550, b"mailbox unavailable")})


def test_an_email_the_server_refuses_is_failed_with_the_reason(
    carlas_chat, owner, queued, settings
):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"
    _escalate(carlas_chat)
    notification = _email(carlas_chat)
    before = timezone.now()
    notification_send(notification=notification)
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert notification.attempts == 1
    assert notification.last_error.startswith("Attempt 1 of 6: The mail server refused")
    assert "mailbox unavailable" in notification.last_error
    assert before + timedelta(minutes=1) <= notification.next_attempt_at
    assert notification.next_attempt_at <= timezone.now() + timedelta(minutes=1)


# --- Webhooks ---------------------------------------------------------------------------------
def test_the_webhook_gets_text_and_content_naming_the_conversation(
    carlas_chat, acme, queued, webhook, settings
):
    settings.SITE_URL = "https://support.example.com"
    acme.webhook_url = webhook.url
    acme.save(update_fields=["webhook_url"])
    _escalate(carlas_chat, priority="high", queue="manager", reason="Asked for a manager")
    notification = Notification.objects.get(kind="webhook")
    assert notification.target == webhook.url
    notification_send(notification=notification)

    (body,) = webhook.bodies
    assert body["text"] == body["content"]
    text = body["text"]
    for part in ("High", "Carla", "Manager", "Acme Support", "Asked for a manager"):
        assert part in text
    assert f"https://support.example.com/o/acme/console/c/{carlas_chat.pk}/" in text
    notification.refresh_from_db()
    assert notification.state == State.SENT


def test_a_failing_webhook_is_retried_with_backoff_by_the_schedule_then_sent(
    carlas_chat, acme, queued, webhook
):
    webhook.statuses.extend([500, 500])
    acme.webhook_url = webhook.url
    acme.save(update_fields=["webhook_url"])
    _escalate(carlas_chat, priority="urgent")
    notification = Notification.objects.get(kind="webhook")

    before = timezone.now()
    notification_send(notification=notification)
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert notification.attempts == 1
    assert notification.last_error == (
        "Attempt 1 of 6: The webhook answered 500 Internal Server Error: invalid_token"
    )
    assert notification.next_attempt_at - before >= timedelta(minutes=1)
    assert notifications_send_due() == 0, "not due for a minute"

    _make_due(notification)
    before = timezone.now()
    assert notifications_send_due() == 1
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (State.FAILED, 2)
    assert notification.next_attempt_at - before >= timedelta(minutes=2), "doubles"

    _make_due(notification)
    assert notifications_send_due() == 1
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (State.SENT, 3)
    assert len(webhook.bodies) == 3
    assert notifications_send_due() == 0, "a sent row is never sent again"


def test_a_failure_is_retried_only_when_due_whoever_asks(carlas_chat, acme, queued, webhook):
    webhook.statuses.append(500)
    acme.webhook_url = webhook.url
    acme.save(update_fields=["webhook_url"])
    _escalate(carlas_chat, priority="urgent")
    notification = Notification.objects.get(kind="webhook")
    assert notification_send(notification=notification) is True
    # A second task for the same row (Retry now and the schedule racing) finds it not due.
    assert notification_send(notification=notification) is False
    assert len(webhook.bodies) == 1


def test_it_gives_up_after_the_limit(carlas_chat, acme, queued, webhook, settings):
    settings.NOTIFY_MAX_ATTEMPTS = 4
    webhook.statuses.extend([503] * 10)
    acme.webhook_url = webhook.url
    acme.save(update_fields=["webhook_url"])
    _escalate(carlas_chat, priority="urgent")
    notification = Notification.objects.get(kind="webhook")
    notification_send(notification=notification)
    delays = []
    for _ in range(3):
        notification.refresh_from_db()
        delays.append(round((notification.next_attempt_at - timezone.now()).total_seconds() / 60))
        _make_due(notification)
        notifications_send_due()
    notification.refresh_from_db()
    assert delays == [1, 2, 4]
    assert notification.state == State.GAVE_UP
    assert notification.attempts == 4
    assert notification.next_attempt_at is None
    assert notification.last_error.startswith("Attempt 4 of 4: The webhook answered 503")
    assert notifications_send_due() == 0
    assert notification_send(notification=notification) is False
    assert len(webhook.bodies) == 4


def test_a_webhook_on_a_private_network_is_refused_unless_allowed(
    carlas_chat, acme, queued, webhook, settings
):
    settings.NOTIFY_WEBHOOK_PRIVATE_NETWORKS = False
    acme.webhook_url = webhook.url
    acme.save(update_fields=["webhook_url"])
    _escalate(carlas_chat, priority="urgent")
    notification = Notification.objects.get(kind="webhook")
    notification_send(notification=notification)
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert "127.0.0.1 is on a private network (127.0.0.1)" in notification.last_error
    assert "NOTIFY_WEBHOOK_PRIVATE_NETWORKS=1" in notification.last_error
    assert webhook.bodies == [], "nothing was posted"


def test_a_redirecting_webhook_is_not_followed(carlas_chat, acme, queued, settings):
    settings.NOTIFY_WEBHOOK_PRIVATE_NETWORKS = True
    server = WebhookServer(redirect_to="http://169.254.169.254/latest/meta-data/")
    try:
        acme.webhook_url = server.url
        acme.save(update_fields=["webhook_url"])
        _escalate(carlas_chat, priority="urgent")
        notification = Notification.objects.get(kind="webhook")
        notification_send(notification=notification)
    finally:
        server.close()
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert "The webhook answered 302 Found" in notification.last_error


def test_an_unreachable_webhook_says_so(carlas_chat, acme, queued, settings):
    settings.NOTIFY_WEBHOOK_PRIVATE_NETWORKS = True
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    acme.webhook_url = f"http://127.0.0.1:{port}/hook"
    acme.save(update_fields=["webhook_url"])
    _escalate(carlas_chat, priority="urgent")
    notification = Notification.objects.get(kind="webhook")
    notification_send(notification=notification)
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert "Could not reach the webhook: connection refused" in notification.last_error


def test_a_pending_row_whose_task_was_lost_is_sent_by_the_schedule(
    carlas_chat, owner, queued, mailoutbox
):
    _escalate(carlas_chat)
    notification = _email(carlas_chat)
    assert notifications_send_due() == 0, "its task has a minute to run"
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    assert notifications_send_due() == 1
    assert len(mailoutbox) == 1


def test_retry_now_sends_a_row_that_gave_up_once_more(carlas_chat, acme, queued, webhook):
    acme.webhook_url = webhook.url
    acme.save(update_fields=["webhook_url"])
    _escalate(carlas_chat, priority="urgent")
    notification = Notification.objects.get(kind="webhook")
    Notification.objects.filter(pk=notification.pk).update(
        state=State.GAVE_UP, attempts=6, last_error="Attempt 6 of 6: The webhook answered 500."
    )
    queued.clear()
    assert notifications_retry(ids=[notification.pk]) == 1
    notification.refresh_from_db()
    assert notification.state == State.FAILED
    assert notifications_send_due() == 1
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (State.SENT, 7)


def test_the_test_message_reaches_the_webhook(acme, queued, webhook):
    acme.webhook_url = webhook.url
    acme.save(update_fields=["webhook_url"])
    notification = notifications.notification_test_webhook(organization=acme)
    notification_send(notification=notification)
    assert webhook.bodies[0]["text"].startswith("Test message from Handoff: Acme's")


def test_renotifying_a_conversation_below_high_creates_nothing(carlas_chat, owner, queued):
    assert notifications_for_conversation(conversation=carlas_chat, reason="x") == []


@pytest.mark.django_db(transaction=True)
def test_a_row_another_worker_holds_is_skipped(carlas_chat, owner, queued, mailoutbox):
    _escalate(carlas_chat)
    notification = _email(carlas_chat)
    # Due for the schedule too (its task "lost"), so both paths are tried against the lock.
    Notification.objects.filter(pk=notification.pk).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        from django.db import connection

        with transaction.atomic():
            Notification.objects.select_for_update().get(pk=notification.pk)
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert locked.wait(10)
        assert notification_send(notification=notification) is False
        assert notifications_send_due() == 0
    finally:
        release.set()
        thread.join()
    assert mailoutbox == []
    notification.refresh_from_db()
    assert (notification.state, notification.attempts) == (State.PENDING, 0)


# --- Out of hours: the customer who left an e-mail address gets the answer there too ----------
def test_an_agents_reply_is_emailed_to_a_customer_who_left_an_address(
    carlas_chat, agent, queued, django_capture_on_commit_callbacks, mailoutbox
):
    from conversations.services import customer_leave_email
    from escalation.services import conversation_claim, conversation_reply

    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    customer_leave_email(conversation=carlas_chat, email="carla@example.com")
    conversation_claim(conversation=carlas_chat, agent=agent)
    with django_capture_on_commit_callbacks(execute=True):
        conversation_reply(conversation=carlas_chat, agent=agent, text="Your parcel left today.")

    row = Notification.objects.get(target="carla@example.com")
    assert queued == [("escalation.tasks.notification_send", row.pk)]  # after commit
    assert (row.conversation, row.organization) == (carlas_chat, carlas_chat.bot.organization)
    assert notifications.notification_send(notification=row)
    [mail] = [m for m in mailoutbox if m.to == ["carla@example.com"]]
    assert mail.subject == "Sam answered your question (Acme Support)"
    assert mail.body.startswith("Your parcel left today.")


def test_the_customer_e_mail_is_signed_with_the_agents_chosen_name(carlas_chat, agent, queued):
    from bots.services import user_set_name
    from conversations.services import customer_leave_email
    from escalation.services import conversation_claim, conversation_reply

    user_set_name(user=agent, name="Sam Rivera")
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    customer_leave_email(conversation=carlas_chat, email="carla@example.com")
    conversation_claim(conversation=carlas_chat, agent=agent)
    conversation_reply(conversation=carlas_chat, agent=agent, text="Your parcel left today.")

    row = Notification.objects.get(target="carla@example.com")
    assert row.subject == "Sam Rivera answered your question (Acme Support)"
    assert "— Sam Rivera, Acme" in row.body


def test_no_e_mail_goes_to_a_customer_who_did_not_ask_for_one(carlas_chat, agent, queued):
    from escalation.services import conversation_claim, conversation_reply, message_add_note

    carlas_chat.customer.email = "carla@example.com"  # known, but no answer by e-mail asked
    carlas_chat.customer.save(update_fields=["email"])
    escalation_open(conversation=carlas_chat, trigger="human_request", reason="Asked")
    conversation_claim(conversation=carlas_chat, agent=agent)
    conversation_reply(conversation=carlas_chat, agent=agent, text="Hello!")
    message_add_note(conversation=carlas_chat, agent=agent, text="VIP")
    assert not Notification.objects.filter(target="carla@example.com").exists()
