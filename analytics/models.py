"""Rollups: what the analytics dashboard reads instead of scanning messages per page view.

One DailyRollup row per (organization, day, bot, channel) sums the conversations that *started*
that day (settings.TIME_ZONE), whatever happened to them later: a conversation resolved or rated
a week after it started changes the row of the day it started, and the worker recomputes that
day (analytics/services.py). AgentDailyRollup does the same per agent. Nothing in them is
approximate: durations are kept as arrays of whole seconds so percentiles over any period are
exact, and time in status as totals with their counts.

Playground conversations never reach a rollup.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from bots.models import Bot, Organization
from conversations.models import Message

# Days start on Monday: hours[weekday * 24 + hour].
HOURS_OF_WEEK = 7 * 24


def _five() -> list[int]:
    return [0] * 5


def _week() -> list[int]:
    return [0] * HOURS_OF_WEEK


def _seconds() -> ArrayField:
    return ArrayField(models.IntegerField(), default=list, blank=True)


class DailyRollup(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=12)
    day = models.DateField()

    conversations = models.PositiveIntegerField(default=0)
    # Resolved or closed; the rates divide by it. conversations - ended are still open.
    ended = models.PositiveIntegerField(default=0)
    bot_resolved = models.PositiveIntegerField(default=0)
    agent_resolved = models.PositiveIntegerField(default=0)
    abandoned = models.PositiveIntegerField(default=0)
    # With at least one EscalationLog.
    escalated = models.PositiveIntegerField(default=0)
    # Of demo customers (Customer.attributes["demo"]): the dashboard says the period holds some.
    demo = models.PositiveIntegerField(default=0)

    # The bot's turns by Message.outcome, and the customers' thumbs on them.
    answered = models.PositiveIntegerField(default=0)
    clarified = models.PositiveIntegerField(default=0)
    deflected = models.PositiveIntegerField(default=0)
    low_confidence = models.PositiveIntegerField(default=0)
    handoff_proposed = models.PositiveIntegerField(default=0)
    handoff = models.PositiveIntegerField(default=0)
    thumbs_up = models.PositiveIntegerField(default=0)
    thumbs_down = models.PositiveIntegerField(default=0)

    # CSAT counts of 1..5 stars: conversations resolved by the bot, by an agent, and every rated
    # one (a rating stays when the conversation reopens, so all ≥ bot + agent).
    csat_bot = ArrayField(models.IntegerField(), size=5, default=_five)
    csat_agent = ArrayField(models.IntegerField(), size=5, default=_five)
    csat_all = ArrayField(models.IntegerField(), size=5, default=_five)

    # Whole seconds, one entry per conversation (per escalation for first_response).
    time_to_escalation = _seconds()
    first_response = _seconds()
    resolution_bot = _seconds()
    resolution_agent = _seconds()

    # {status: [seconds, stays]}: closed stays never end and are not there.
    time_in_status = models.JSONField(default=dict, blank=True)
    # Conversations started per local hour of the week, Monday 00h first.
    hours = ArrayField(models.IntegerField(), size=HOURS_OF_WEEK, default=_week)
    # {"trigger:rule_id": escalations}; rule_id empty when no rule decided.
    escalation_reasons = models.JSONField(default=dict, blank=True)
    # {"kind:name": [thumbs_down, low_confidence]}: the intents and documents behind weak turns.
    weak_sources = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "bot", "channel"], name="unique_daily_rollup"
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} bot {self.bot_id} {self.channel}: {self.conversations}"


class AgentDailyRollup(models.Model):
    """What each person did in the conversations that started that day: replied in or resolved
    (handled), resolved, answered an escalation first, and the ratings of those they resolved."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=12)
    day = models.DateField()

    handled = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    first_response = _seconds()
    resolution = _seconds()
    csat_sum = models.PositiveIntegerField(default=0)
    csat_n = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "agent", "bot", "channel"],
                name="unique_agent_daily_rollup",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} agent {self.agent_id}: {self.handled}"


class RefreshState(models.Model):
    """Per organization: how far the rollups are current. The refresh locks this row, so two
    workers refreshing one organization take turns."""

    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    # Changes at or after (watermark - overlap) are picked up by the next refresh.
    watermark = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    days = models.PositiveIntegerField(default=0, help_text="Days recomputed by the last run.")
    seconds = models.FloatField(default=0.0, help_text="How long the last run took.")

    def __str__(self) -> str:
        return f"Rollups of organization {self.organization_id} as of {self.refreshed_at}"


class GapQuestion(models.Model):
    """A customer question behind a weak answer, embedded once by its bot's model (and domain
    adapter, when the bot has one) so the gaps report (analytics/gaps.py) clusters and checks
    thousands of them without embedding any again. A cache: rows are re-made when the bot's
    model or adapter changes, and deleted with the message."""

    message = models.OneToOneField(
        Message, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    embedding_model = models.CharField(max_length=100)
    # float32 bytes (numpy's tobytes), not pgvector: never searched in SQL, only read back in
    # bulk, and parsing thousands of pgvector texts cost more than the whole report.
    embedding = models.BinaryField()
    adapter = models.CharField(max_length=100, blank=True, default="")
    adapter_embedding = models.BinaryField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Gap question {self.message_id} ({self.embedding_model})"
