from django.db import migrations, models

import bots.models


def names_from_full_names(apps, schema_editor):
    """People who signed up before names were asked keep the first and last name they had
    (Google's, the demo's, the admin's); the rest are named by their address's local part by
    User.display_name until they choose a name on their profile page."""
    User = apps.get_model("bots", "User")
    limit = User._meta.get_field("name").max_length
    for user in User.objects.filter(name="").only("first_name", "last_name").iterator():
        full = " ".join(part.strip() for part in (user.first_name, user.last_name) if part.strip())
        if full:
            user.name = " ".join(full.split())[:limit]
            user.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [
        ("bots", "0008_gate_calibration"),
    ]

    operations = [
        migrations.AddField(
            model_name="invitation",
            name="name",
            field=models.CharField(
                blank=True, max_length=80, validators=[bots.models.validate_person_name]
            ),
        ),
        migrations.AddField(
            model_name="user",
            name="name",
            field=models.CharField(
                blank=True,
                help_text="Shown to customers in the chat and to teammates in the console.",
                max_length=80,
                validators=[bots.models.validate_person_name],
                verbose_name="name",
            ),
        ),
        migrations.RunPython(names_from_full_names, migrations.RunPython.noop),
    ]
