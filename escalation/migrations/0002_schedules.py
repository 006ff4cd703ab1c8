"""The schedules that retry notifications and raise conversations nobody answered in time
(escalation/tasks.py). django-q2 rows created here so every install has exactly one of each
(by name: running migrations again never adds a second).
"""

from django.db import migrations

SCHEDULES = {
    "escalation: send due notifications": "escalation.tasks.notifications_send_due",
    "escalation: raise conversations past their response deadline": (
        "escalation.tasks.conversations_raise_overdue"
    ),
}


def schedules_create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func in SCHEDULES.items():
        Schedule.objects.get_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": "I",  # Schedule.MINUTES
                "minutes": 1,
                "repeats": -1,
            },
        )


def schedules_delete(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=list(SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("escalation", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(schedules_create, schedules_delete)]
