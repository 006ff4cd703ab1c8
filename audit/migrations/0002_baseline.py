"""A baseline event for every row that existed before the audit log: the first change of an
old rule then shows what it was before (pgh_previous), not nothing. Not shown in the log."""

from django.db import migrations

# event model → (tracked app, model, fields copied)
BASELINES = {
    "OrganizationEvent": ("bots", "Organization", ["name", "webhook_url"]),
    "MembershipEvent": ("bots", "Membership", ["organization_id", "user_id", "role"]),
    "BotEvent": ("bots", "Bot", None),
    "EscalationRuleEvent": ("escalation", "EscalationRule", None),
    "BusinessHoursEvent": ("escalation", "BusinessHours", None),
    "HolidayEvent": ("escalation", "Holiday", None),
}


def baseline(apps, schema_editor):
    for event_name, (app_label, model_name, fields) in BASELINES.items():
        Event = apps.get_model("audit", event_name)
        Tracked = apps.get_model(app_label, model_name)
        if fields is None:
            tracked = {f.attname for f in Tracked._meta.concrete_fields}
            fields = [
                f.attname
                for f in Event._meta.concrete_fields
                if f.attname in tracked and f.attname != "organization_id"
                or (f.attname == "organization_id" and model_name == "Bot")
            ]
        Event.objects.bulk_create(
            [
                Event(pgh_label="baseline", pgh_obj_id=row.pk, **{f: getattr(row, f) for f in fields})
                for row in Tracked.objects.all().iterator()
            ],
            batch_size=500,
        )


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(baseline, migrations.RunPython.noop)]
