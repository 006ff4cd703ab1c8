"""URL and sitemap sources: a failure counter for the retry backoff, and the schedule that
re-syncs sources when they fall due.

The schedule is a django-q2 row, created here so every install has exactly one (by name: running
migrations again, or a re-created row, never adds a second).
"""

from django.db import migrations, models

SCHEDULE_NAME = "knowledge: re-sync due web sources"


def schedule_create(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    Schedule.objects.get_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": "knowledge.tasks.sources_sync_due",
            "schedule_type": "I",  # Schedule.MINUTES
            "minutes": 5,
            "repeats": -1,
        },
    )


def schedule_delete(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name=SCHEDULE_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0004_chunk_title_kind"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="knowledgesource",
            name="failure_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(schedule_create, schedule_delete),
    ]
