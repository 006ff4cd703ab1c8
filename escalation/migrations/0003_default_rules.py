"""The default escalation rules for every bot that existed before rules did (new bots get them
from escalation.services.escalation_rules_create_defaults). A copy of escalation/defaults.py as
it was, as a migration's data must not change when the code does."""

from django.db import migrations

HUMAN_PHRASES = (
    "talk to a human\nspeak to a human\ntalk to a person\nspeak to a person\nreal person\n"
    "real human\nlive agent\nhuman agent\nspeak to someone\ntalk to someone\nan agent please"
)

RULES = [
    dict(
        name="Asks for a person",
        trigger="human_request",
        phrases=HUMAN_PHRASES,
        mode="handoff",
        priority="medium",
        queue="tier1",
    ),
    dict(
        name="Legal matter",
        trigger="category",
        categories="legal",
        mode="handoff",
        priority="high",
        queue="manager",
    ),
    dict(
        name="Security concern",
        trigger="category",
        categories="security",
        mode="handoff",
        priority="high",
        queue="tier2",
    ),
    dict(
        name="Billing dispute or cancellation",
        trigger="category",
        categories="billing_dispute, cancellation",
        mode="offer",
        priority="high",
        queue="tier2",
    ),
    dict(
        name="Angry or urgent",
        trigger="sentiment",
        level="angry",
        mode="handoff",
        priority="high",
        queue="tier1",
    ),
    dict(
        name="High frustration",
        trigger="frustration",
        threshold=0.7,
        mode="handoff",
        priority="high",
        queue="tier1",
    ),
    dict(
        name="Returning within 24 hours",
        trigger="returning",
        window_hours=24,
        mode="offer",
        priority="medium",
        queue="tier1",
    ),
    dict(
        name="Six messages without resolution",
        trigger="unresolved",
        message_count=6,
        mode="offer",
        priority="medium",
        queue="tier1",
    ),
    dict(
        name="Low answer confidence",
        trigger="low_confidence",
        threshold=0.35,
        mode="offer",
        priority="medium",
        queue="tier1",
    ),
    dict(name="The bot failed", trigger="ai_error", mode="handoff", priority="high", queue="tier1"),
]


def add_defaults(apps, schema_editor):
    Bot = apps.get_model("bots", "Bot")
    EscalationRule = apps.get_model("escalation", "EscalationRule")
    for bot in Bot.objects.exclude(escalation_rules__isnull=False).iterator():
        EscalationRule.objects.bulk_create(
            EscalationRule(bot=bot, position=(i + 1) * 10, **fields)
            for i, fields in enumerate(RULES)
        )


class Migration(migrations.Migration):
    dependencies = [("escalation", "0002_schedules")]

    operations = [migrations.RunPython(add_defaults, migrations.RunPython.noop)]
