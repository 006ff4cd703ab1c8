"""The recovery schedule's task moved with the chat runner: conversations.tasks → chat.tasks.

conversations/migrations/0002_turn_recover.py created the django-q2 row with the old dotted
path, which the worker would no longer find; this points it (and any copy made by hand) at the
new one.
"""

from django.db import migrations

OLD = "conversations.tasks.turn_recover"
NEW = "chat.tasks.turn_recover"


def func_forward(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=OLD).update(func=NEW)


def func_backward(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=NEW).update(func=OLD)


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0002_turn_recover"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(func_forward, func_backward)]
