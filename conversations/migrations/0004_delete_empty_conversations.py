"""Delete the conversations the widget used to create on `hello`, before anyone wrote, and the
customers left with no conversation (a row per visitor who merely loaded a page).

Since conversations start with their first message or request for a person (issue 11), no
new ones are made. Only rows that can hold nothing are deleted: a conversation with no message
and no status change (so no handoff, escalation, notification or rating), and a customer with
no conversation left. Both must be an hour old, so that a server still running the previous
version during the deploy does not lose the row a visitor's open socket is about to use.
"""

from datetime import timedelta

from django.db import migrations
from django.utils import timezone


def delete_empty(apps, schema_editor):
    Conversation = apps.get_model("conversations", "Conversation")
    Customer = apps.get_model("conversations", "Customer")
    before = timezone.now() - timedelta(hours=1)
    Conversation.objects.filter(
        created_at__lt=before,
        status="ai",
        csat__isnull=True,
        messages__isnull=True,
        transitions__isnull=True,
        escalations__isnull=True,
    ).delete()
    Customer.objects.filter(created_at__lt=before, conversations__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0003_escalation_fields"),
        # Its models are in the state, so the deletes above see every row that points here.
        ("escalation", "0003_default_rules"),
    ]

    operations = [migrations.RunPython(delete_empty, migrations.RunPython.noop)]
