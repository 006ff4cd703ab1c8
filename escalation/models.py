"""Escalation: the rules that decide when a person takes over, the log of every handoff, the
bots' business hours, and the notifications sent to agents.

Rules are per bot and ordered: the first enabled rule whose trigger matches decides the action
(escalation/rules.py). Every handoff, automatic or manual, writes an EscalationLog with the
times a manager reads: triggered, first agent response, resolved.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from bots.models import Bot, Organization
from conversations.models import Conversation, Level, Message, Queue

Priority = Conversation.Priority


class Trigger(models.TextChoices):
    HUMAN_REQUEST = "human_request", "The customer asks for a person"
    KEYWORDS = "keywords", "The message contains a keyword"
    SENTIMENT = "sentiment", "Sentiment level at or above"
    FRUSTRATION = "frustration", "Frustration at or above"
    LOW_CONFIDENCE = "low_confidence", "Answer confidence below"
    CATEGORY = "category", "Classifier category"
    UNRESOLVED = "unresolved", "Customer messages without resolution"
    RETURNING = "returning", "The customer returns within a window"
    AI_ERROR = "ai_error", "The bot failed to answer"
    # Not a rule's trigger: how a log records a handoff no rule decided.
    AGENT_TAKEOVER = "agent_takeover", "An agent took over"
    GUARDRAIL = "guardrail", "A guardrail blocked the answer"
    API = "api", "Escalated through the API"
    NOT_ANSWERED = "not_answered", "The customer said the answer did not help"
    # Not a rule's trigger: an action asked for more than its policy allows (actions.Action's
    # limit), so a person decides.
    ACTION = "action", "An action is above its policy limit"


# What an admin may pick for a rule (the others only describe logs).
RULE_TRIGGERS = [
    c
    for c in Trigger.choices
    if c[0] not in ("agent_takeover", "guardrail", "api", "not_answered", "action")
]


# What the classifier calls a message (conversations/pipeline/classify.py): high_stakes, or one
# of its subtypes; or what the pipeline found: out_of_scope, a question the bot's knowledge does
# not cover (the bot says so and offers a person; a rule can make it hand off instead).
SUBTYPES = ("cancellation", "billing_dispute", "security", "legal", "complaint")
CATEGORIES = ("high_stakes", *SUBTYPES, "out_of_scope")


class Mode(models.TextChoices):
    HANDOFF = "handoff", "Hand off at once"
    OFFER = "offer", "Offer the customer a person"


class EscalationRule(models.Model):
    """A trigger with its parameters, and what to do when it fires.

    Which parameter a trigger reads: human_request and keywords read `phrases` (one per line;
    human_request also fires on the widget's button and on the classifier's "asks for a
    person"); sentiment reads `level`; frustration reads `threshold` (0–1, at or above);
    low_confidence reads `threshold` (below); category reads `categories`; unresolved reads
    `message_count`; returning reads `window_hours`; ai_error reads nothing.
    """

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="escalation_rules")
    position = models.PositiveIntegerField(default=0, help_text="Rules are tried lowest first.")
    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    trigger = models.CharField(max_length=20, choices=RULE_TRIGGERS)
    phrases = models.TextField(
        blank=True, help_text="One per line: phrases (asks for a person) or keywords."
    )
    level = models.CharField("sentiment level", max_length=10, choices=Level.choices, blank=True)
    threshold = models.FloatField(
        null=True, blank=True, help_text="Frustration at or above, or confidence below (0–1)."
    )
    categories = models.CharField(
        max_length=200,
        blank=True,
        help_text="Comma-separated: high_stakes, cancellation, billing_dispute, security, "
        "legal, complaint, out_of_scope.",
    )
    message_count = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Customer messages without resolution."
    )
    window_hours = models.PositiveIntegerField(
        null=True, blank=True, help_text="Hours since the customer's previous conversation."
    )
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.HANDOFF)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    queue = models.CharField(max_length=8, choices=Queue.choices, default=Queue.TIER1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["bot", "position", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def phrase_list(self) -> list[str]:
        return [line.strip() for line in self.phrases.splitlines() if line.strip()]

    @property
    def category_list(self) -> list[str]:
        return [c.strip().lower() for c in self.categories.split(",") if c.strip()]

    def clean(self) -> None:
        """Each trigger's parameters, with the message on the field to fix."""
        errors = {}
        trigger = self.trigger
        if trigger == Trigger.KEYWORDS and not self.phrase_list:
            errors["phrases"] = "List the keywords, one per line."
        if trigger == Trigger.SENTIMENT and not self.level:
            errors["level"] = "Pick the sentiment level at or above which this rule fires."
        if trigger in (Trigger.FRUSTRATION, Trigger.LOW_CONFIDENCE):
            if self.threshold is None:
                what = (
                    "frustration at or above"
                    if trigger == Trigger.FRUSTRATION
                    else ("answer confidence below")
                )
                errors["threshold"] = f"Give the {what} which this rule fires, from 0 to 1."
            elif not 0 <= self.threshold <= 1:
                errors["threshold"] = f"The threshold is from 0 to 1, not {self.threshold:g}."
        if trigger == Trigger.CATEGORY:
            unknown = [c for c in self.category_list if c not in CATEGORIES]
            if not self.category_list:
                errors["categories"] = "Name at least one category: " + ", ".join(CATEGORIES) + "."
            elif unknown:
                errors["categories"] = (
                    f"Unknown {'category' if len(unknown) == 1 else 'categories'} "
                    f"{', '.join(unknown)}; use {', '.join(CATEGORIES)}."
                )
        if trigger == Trigger.UNRESOLVED and not self.message_count:
            errors["message_count"] = "Give the number of customer messages (1 or more)."
        if trigger == Trigger.RETURNING and not self.window_hours:
            errors["window_hours"] = "Give the window in hours (1 or more)."
        if errors:
            raise ValidationError(errors)


class EscalationLog(models.Model):
    """One handoff of a conversation to people, automatic (a rule, the classifier, an error)
    or manual (the customer's button, an agent taking over)."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="escalations"
    )
    rule = models.ForeignKey(
        EscalationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="logs"
    )
    # The customer message that fired it, if one did.
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    reason = models.CharField(max_length=200)
    manual = models.BooleanField(default=False)
    priority = models.CharField(max_length=8, choices=Priority.choices)
    queue = models.CharField(max_length=8, choices=Queue.choices)
    # What the agent gets (escalation/package.py): summary, sentiment trajectory, what the bot
    # retrieved and drafted, a suggested first action. A snapshot at the handoff.
    package = models.JSONField(default=dict, blank=True)
    triggered_at = models.DateTimeField(auto_now_add=True)
    first_response_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-triggered_at", "-id"]
        indexes = [models.Index(fields=["conversation", "-triggered_at"], name="escalation_conv")]

    def __str__(self) -> str:
        return f"#{self.conversation_id} {self.trigger} ({self.priority})"


WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def _hours_field(day: str, default: str) -> models.CharField:
    return models.CharField(
        day.capitalize(),
        max_length=60,
        blank=True,
        default=default,
        help_text="e.g. 09:00-17:00, or 09:00-12:00, 13:00-17:00; empty: closed.",
    )


class BusinessHours(models.Model):
    """When people answer a bot's conversations. A bot without it is staffed around the clock.
    Outside these hours (or on a Holiday) a handed-off customer may leave an e-mail address
    and is told when to expect an answer; the conversation waits in the queue."""

    bot = models.OneToOneField(Bot, on_delete=models.CASCADE, related_name="business_hours")
    enabled = models.BooleanField(default=True)
    timezone = models.CharField(max_length=64, default="UTC", help_text="e.g. Europe/Berlin.")
    monday = _hours_field("monday", "09:00-17:00")
    tuesday = _hours_field("tuesday", "09:00-17:00")
    wednesday = _hours_field("wednesday", "09:00-17:00")
    thursday = _hours_field("thursday", "09:00-17:00")
    friday = _hours_field("friday", "09:00-17:00")
    saturday = _hours_field("saturday", "")
    sunday = _hours_field("sunday", "")

    class Meta:
        verbose_name_plural = "business hours"

    def __str__(self) -> str:
        return f"Hours of {self.bot}"

    def clean(self) -> None:
        """The time zone must exist and every day's spans parse (escalation/hours.py)."""
        from escalation.hours import parse_spans, zone

        errors = {}
        try:
            zone(self.timezone)
        except ValueError as exc:
            errors["timezone"] = str(exc)
        for day in WEEKDAYS:
            try:
                parse_spans(getattr(self, day))
            except ValueError as exc:
                errors[day] = str(exc)
        if errors:
            raise ValidationError(errors)


class Holiday(models.Model):
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["bot", "date"], name="unique_holiday")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}".strip()


class Notification(models.Model):
    """An e-mail or chat-webhook message to agents, sent by the worker and retried with
    backoff; failures stay visible in admin."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Chat webhook"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (retrying)"
        GAVE_UP = "gave_up", "Failed (gave up)"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="notifications"
    )
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # E-mail addresses (comma-separated) or the webhook URL.
    target = models.CharField(max_length=500)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="notification_due")]

    def __str__(self) -> str:
        return f"{self.kind} → {self.target[:40]} ({self.state})"
