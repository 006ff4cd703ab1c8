"""Notifications to agents: who is told of a handoff, what they read, and sending it.

A high or urgent handoff (and a conversation raised to high or urgent because nobody answered,
escalation/sla.py) becomes Notification rows in the same transaction: one e-mail to the
organization's members who serve the conversation's queue, and one post to the organization's
chat webhook (Slack or Discord) when it has one. The worker sends each row after commit; a
failure is recorded on the row with a readable reason and retried with exponential backoff by
the every-minute schedule, until NOTIFY_MAX_ATTEMPTS, after which the row gives up. Nothing is
dropped silently: every outcome stays on its row, visible in admin.

Recipients come only from the conversation's own organization: a member of another tenant is
never told about it, whatever queues they serve.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx2 as httpx
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from bots.models import Organization, User
from config.claims import claim_due
from config.netguard import AddressRefused, error_reason, guarded_client
from conversations.models import Conversation, Message
from escalation.models import EscalationLog, Notification

log = logging.getLogger(__name__)

Priority = Conversation.Priority
State = Notification.State
Kind = Notification.Kind

# Lower priorities wait in the console's queue without telling anyone.
NOTIFIED_PRIORITIES = (Priority.HIGH, Priority.URGENT)
# Notification.target holds comma-separated addresses; a queue served by more people than fit
# is told in several e-mails.
_TARGET_CHARS = Notification._meta.get_field("target").max_length
WEBHOOK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "Handoff notifications"
MAX_BACKOFF = timedelta(days=1)
# One schedule run sends at most this many rows, so it ends well inside the worker's timeout
# even when every webhook times out.
DUE_BATCH = 50


class DeliveryError(Exception):
    """Why a notification was not delivered, as a sentence for the admin's "last error"."""


# --- Who and what -----------------------------------------------------------------------------
def console_url(conversation: Conversation) -> str:
    path = reverse(
        "console_conversation",
        kwargs={"org": conversation.bot.organization.slug, "conversation_id": conversation.pk},
    )
    return settings.SITE_URL.rstrip("/") + path


def recipients_for(*, conversation: Conversation) -> list[str]:
    """E-mail addresses of the conversation's organization's active members who serve its
    queue, any role. The membership conditions sit in one filter() so they apply to the same
    membership: serving the queue in another organization does not count."""
    return list(
        User.objects.filter(
            memberships__organization_id=conversation.bot.organization_id,
            memberships__queues__contains=[conversation.queue],
            is_active=True,
        )
        .exclude(email="")
        .order_by("email")
        .values_list("email", flat=True)
        .distinct()
    )


def _texts(conversation: Conversation, reason: str) -> tuple[str, str, str]:
    """(subject, e-mail body, one-line chat message)."""
    bot = conversation.bot
    customer = str(conversation.customer)
    priority = conversation.get_priority_display()
    queue = conversation.get_queue_display()
    link = console_url(conversation)
    subject = f"[{priority}] {customer} is waiting for a person ({bot.name})"
    body = (
        f"{customer} is waiting for a person in {bot.name}'s {queue} queue.\n\n"
        f"Priority: {priority}\n"
        f"Queue: {queue}\n"
        f"Bot: {bot.name}\n"
        f"Reason: {reason}\n\n"
        f"Open the conversation: {link}\n\n"
        f"You get this e-mail because you serve the {queue} queue of "
        f"{bot.organization.name} on Handoff.\n"
    )
    # Plain text with the bare link: Slack and Discord both make it clickable, and neither
    # understands the other's link markup.
    chat = f"{priority}: {customer} is waiting in {queue} ({bot.name}). {reason} {link}"
    return subject, body, chat


def notifications_for_escalation(*, log: EscalationLog) -> list[Notification]:
    """Notify the queue of a high or urgent handoff. Call inside the transaction that writes
    the log: the rows commit with it and are sent by the worker after commit."""
    if log.priority not in NOTIFIED_PRIORITIES:
        return []
    return notifications_for_conversation(conversation=log.conversation, reason=log.reason)


def notifications_for_conversation(
    *, conversation: Conversation, reason: str
) -> list[Notification]:
    """Notification rows for a waiting conversation at its current priority and queue (none
    below high), each queued to the worker on commit."""
    if conversation.priority not in NOTIFIED_PRIORITIES:
        return []
    organization = conversation.bot.organization
    subject, body, chat = _texts(conversation, reason.strip() or "No reason given.")
    rows = [
        Notification(
            organization=organization,
            conversation=conversation,
            kind=Kind.EMAIL,
            target=",".join(batch),
            subject=subject[:200],
            body=body,
        )
        for batch in _address_batches(recipients_for(conversation=conversation))
    ]
    if organization.webhook_url:
        rows.append(
            Notification(
                organization=organization,
                conversation=conversation,
                kind=Kind.WEBHOOK,
                target=organization.webhook_url,
                subject=subject[:200],
                body=chat,
            )
        )
    created = Notification.objects.bulk_create(rows)
    _enqueue_on_commit([n.pk for n in created])
    return created


def notification_customer_reply(*, message: Message) -> Notification | None:
    """E-mail an agent's reply to a customer who left an address for it (out of hours, the
    conversation said "We'll answer you at …"): they may have left the page. Call inside the
    transaction that stores the reply; sent by the worker after commit, retried like any other.
    """
    conversation = message.conversation
    email = conversation.customer.email
    if message.internal or not email or not customer_asked_for_email(conversation=conversation):
        return None
    bot = conversation.bot
    agent = message.agent.display_name if message.agent_id else bot.name
    notification = Notification.objects.create(
        organization=bot.organization,
        conversation=conversation,
        kind=Kind.EMAIL,
        target=email,
        subject=f"{agent} answered your question ({bot.name})"[:200],
        body=(
            f"{message.text}\n\n"
            f"— {agent}, {bot.organization.name}\n\n"
            "You asked us to answer you by e-mail. You can also reply in the chat on our site.\n"
        ),
    )
    _enqueue_on_commit([notification.pk])
    return notification


def customer_asked_for_email(*, conversation: Conversation) -> bool:
    """The customer left an e-mail address in this conversation (customer_leave_email)."""
    return conversation.messages.filter(
        sender=Message.Sender.SYSTEM, extras__has_key="email_left"
    ).exists()


def notification_test_webhook(*, organization: Organization) -> Notification:
    """A test post to the organization's webhook (the admin's "Send a test message"): sent by
    the worker and recorded like any other, so its outcome shows in the notifications list."""
    if not organization.webhook_url:
        raise ValueError(f"{organization.name} has no chat webhook.")
    with transaction.atomic():
        notification = Notification.objects.create(
            organization=organization,
            kind=Kind.WEBHOOK,
            target=organization.webhook_url,
            subject="Test message",
            body=f"Test message from Handoff: {organization.name}'s high and urgent "
            "conversations waiting for a person will be posted here.",
        )
        _enqueue_on_commit([notification.pk])
    return notification


def _address_batches(addresses: list[str]) -> list[list[str]]:
    batches: list[list[str]] = []
    length = _TARGET_CHARS + 1
    for address in addresses:
        if length + 1 + len(address) > _TARGET_CHARS:
            batches.append([])
            length = -1
        batches[-1].append(address)
        length += 1 + len(address)
    return batches


def _enqueue_on_commit(ids: list[int]) -> None:
    from escalation import tasks

    for pk in ids:
        transaction.on_commit(lambda pk=pk: tasks.enqueue_notification_send(pk), robust=True)


# --- Sending ----------------------------------------------------------------------------------
def notification_send(*, notification: Notification) -> bool:
    """Send one notification now if it is pending or its retry is due, unless another worker
    holds it. Returns whether this call made an attempt.

    Locks the row (skip_locked) for the attempt, network call included, so two workers never
    send it twice; the webhook and SMTP timeouts bound how long. A failed attempt moves the
    retry into the future, so the schedule and a queued task never both retry one failure.
    """
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update(skip_locked=True)
            .filter(
                Q(state=State.PENDING) | Q(state=State.FAILED, next_attempt_at__lte=timezone.now()),
                pk=notification.pk,
            )
            .first()
        )
        if row is None:
            return False
        _attempt(row)
    notification.refresh_from_db()
    return True


def notifications_send_due() -> int:
    """The every-minute schedule: send failed rows whose retry is due, and pending rows whose
    queued task never ran (a worker restart, a lost queue entry) after a minute. Rows another
    worker holds are skipped. Returns how many were attempted."""
    now = timezone.now()
    due = Q(state=State.FAILED, next_attempt_at__lte=now) | Q(
        state=State.PENDING, created_at__lte=now - timedelta(minutes=1)
    )
    rows = Notification.objects.filter(due).order_by("next_attempt_at", "id")
    # An attempt leaves its row sent, given up, or failed with its retry in the future: no
    # longer due, so no other sweep claims it again.
    return len(claim_due(rows, _attempt, limit=DUE_BATCH))


def notifications_retry(*, ids: list[int]) -> int:
    """Admin's "Retry now": unsent rows (failed, gave up, or still pending) are queued to be
    sent at once, with one more attempt even past the limit. Returns how many were queued."""
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(pk__in=ids)
            .exclude(state=State.SENT)
        )
        for row in rows:
            if row.state == State.GAVE_UP:
                row.state = State.FAILED
            row.next_attempt_at = timezone.now()
            row.save(update_fields=["state", "next_attempt_at"])
        _enqueue_on_commit([row.pk for row in rows])
    return len(rows)


def _attempt(row: Notification) -> None:
    """One delivery of a locked row, its outcome saved on it."""
    row.attempts += 1
    try:
        if row.kind == Kind.EMAIL:
            _send_email(row)
        else:
            _post_webhook(row)
    except DeliveryError as exc:
        _failed(row, str(exc))
    except Exception as exc:  # an unexpected error is still recorded, never lost
        log.exception("notification %s failed unexpectedly", row.pk)
        _failed(row, f"Unexpected error: {type(exc).__name__}: {exc}")
    else:
        row.state = State.SENT
        row.sent_at = timezone.now()
        row.next_attempt_at = None
    row.save(update_fields=["state", "attempts", "last_error", "next_attempt_at", "sent_at"])


def _failed(row: Notification, error: str) -> None:
    """Keep the reason; retry after 1, 2, 4, 8 … minutes, or give up at the limit."""
    limit = settings.NOTIFY_MAX_ATTEMPTS
    row.last_error = f"Attempt {row.attempts} of {limit}: {error}"
    if row.attempts >= limit:
        row.state = State.GAVE_UP
        row.next_attempt_at = None
        log.warning("notification %s gave up after %s attempts: %s", row.pk, row.attempts, error)
    else:
        row.state = State.FAILED
        delay = min(timedelta(minutes=2 ** (row.attempts - 1)), MAX_BACKOFF)
        row.next_attempt_at = timezone.now() + delay
        log.info("notification %s failed, retrying in %s: %s", row.pk, delay, error)


def _send_email(row: Notification) -> None:
    to = [address for address in row.target.split(",") if address]
    if not to:
        raise DeliveryError("The notification has no recipient address.")
    message = EmailMessage(
        subject=row.subject, body=row.body, from_email=settings.DEFAULT_FROM_EMAIL, to=to
    )
    try:
        message.send(fail_silently=False)
    except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors
        raise DeliveryError(f"The mail server refused or could not be reached: {exc}.") from None


def _post_webhook(row: Notification) -> None:
    url = row.target
    # Slack reads "text", Discord "content"; each ignores the other's key.
    payload = {"text": row.body, "content": row.body}
    try:
        # The webhook URL is typed by an organization's owner: posting to an internal address
        # would let any tenant probe this instance's network. Intranet chat servers are a
        # setting of their own, apart from intranet help centres (web sources').
        with guarded_client(
            allow_private=settings.NOTIFY_WEBHOOK_PRIVATE_NETWORKS,
            timeout=WEBHOOK_TIMEOUT,
            # A webhook answers where it is posted: a redirect is reported, never followed
            # (it could lead inward, past the address check).
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        ) as http:
            response = http.post(url, json=payload)
    except AddressRefused as exc:
        if exc.ip is None:
            raise DeliveryError(str(exc)) from None
        raise DeliveryError(
            f"{exc.url.host} is on a private network ({exc.ip}); webhooks are only posted to "
            "public addresses (NOTIFY_WEBHOOK_PRIVATE_NETWORKS=1 allows intranet servers)."
        ) from None
    except httpx.TimeoutException:
        raise DeliveryError(
            f"The webhook did not answer within {WEBHOOK_TIMEOUT.read:.0f} s."
        ) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"Could not reach the webhook: {error_reason(exc)}.") from None
    if not response.is_success:
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        detail = response.text.strip()[:200]
        raise DeliveryError(
            f"The webhook answered {response.status_code}{reason}"
            + (f": {detail}" if detail else ".")
        )
