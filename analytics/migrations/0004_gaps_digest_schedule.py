"""The knowledge gaps' schedules (analytics/tasks.py): the weekly e-mail, Mondays at 08:00 in
settings.TIME_ZONE from the next Monday, and the embedding of new gap questions every ten
minutes. Created by name, so running migrations again never adds a second (as
0002_rollup_schedule.py)."""

from datetime import datetime, time, timedelta

from django.db import migrations
from django.utils import timezone

NAME = "analytics: weekly knowledge gaps e-mail"
FUNC = "analytics.tasks.analytics_gaps_digest"
EMBED_NAME = "analytics: embed new gap questions"
EMBED_FUNC = "analytics.tasks.analytics_gaps_embed"


def next_monday_morning() -> datetime:
    today = timezone.localdate()
    monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
    return datetime.combine(monday, time(8, 0), tzinfo=timezone.get_current_timezone())


def schedule_create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.get_or_create(
        name=NAME,
        defaults={
            "func": FUNC,
            "schedule_type": "W",
            "repeats": -1,
            "next_run": next_monday_morning(),
        },
    )
    Schedule.objects.get_or_create(
        name=EMBED_NAME,
        defaults={"func": EMBED_FUNC, "schedule_type": "I", "minutes": 10, "repeats": -1},
    )


def schedule_delete(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=[NAME, EMBED_NAME]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0003_gap_questions"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(schedule_create, schedule_delete)]
