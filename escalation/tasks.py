"""django-q2 tasks: thin. They re-fetch by id and return quietly if the row is gone."""

from __future__ import annotations

from django_q.tasks import async_task


def enqueue_notification_send(notification_id: int) -> None:
    async_task(
        "escalation.tasks.notification_send",
        notification_id,
        task_name=f"notification-{notification_id}",
    )


def notification_send(notification_id: int) -> None:
    from escalation.models import Notification
    from escalation.notifications import notification_send as send

    notification = Notification.objects.filter(pk=notification_id).first()
    if notification is None:
        return
    send(notification=notification)


def notifications_send_due() -> int:
    """Every minute (the schedule is created by escalation/migrations/0002_schedules.py):
    retries that are due, and pending rows whose task was lost."""
    from escalation.notifications import notifications_send_due as send_due

    return send_due()


def conversations_raise_overdue() -> int:
    """Every minute (escalation/migrations/0002_schedules.py): waiting conversations past
    their response deadline are raised a priority level and their queue told again."""
    from escalation.sla import conversations_raise_overdue as raise_overdue

    return raise_overdue()
