"""Customers, their conversations with a bot, and the messages in them.

A conversation moves ai → waiting (handed off, in the queue) → active (an agent took it) →
resolved / closed, and to awaiting_customer whenever the bot or an agent has answered and the
customer's turn has come (who holds it then: `assigned_agent`, None for the bot); the bot speaks
only while it is `ai` (conversations/services/ enforces the state machine). A resolved or
closed conversation records who resolved it (`resolution`).

Messages are saved before anything acts on them: the customer's on arrival, the bot's as
`pending` the moment it starts answering, then `complete` (or `failed`), so a crash mid-answer
leaves a row to finish or retry, never a lost turn.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.contrib.postgres.search import SearchVector
from django.db import models
from django.db.models import Q

from bots.models import Bot


class Customer(models.Model):
    """Someone chatting in the widget or through the API. Not a User: customers never sign in.

    `visitor_id` is the anonymous id the widget keeps in the browser; `external_id` is the
    site's own user id, trusted only when signed with the bot's secret (identity verification),
    and only then does a customer's history follow them across devices.
    """

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="customers")
    visitor_id = models.CharField(max_length=64, blank=True)
    external_id = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=120, blank=True)
    email = models.EmailField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_seen_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "external_id"],
                condition=~Q(external_id=""),
                name="unique_verified_customer",
            ),
            models.UniqueConstraint(
                fields=["bot", "visitor_id"],
                condition=Q(external_id="") & ~Q(visitor_id=""),
                name="unique_anonymous_visitor",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.external_id or f"Visitor {self.visitor_id[:8]}"

    @property
    def verified(self) -> bool:
        return bool(self.external_id)


class Queue(models.TextChoices):
    """Which people a handed-off conversation waits for (escalation rules pick one)."""

    TIER1 = "tier1", "Tier 1"
    TIER2 = "tier2", "Tier 2"
    MANAGER = "manager", "Manager"


class Level(models.TextChoices):
    """A customer message's emotional level, mildest first (conversations/assessment.py)."""

    POSITIVE = "positive", "Positive"
    NEUTRAL = "neutral", "Neutral"
    FRUSTRATED = "frustrated", "Frustrated"
    ANGRY = "angry", "Angry"
    URGENT = "urgent", "Urgent"


class Conversation(models.Model):
    Queue = Queue

    class Status(models.TextChoices):
        AI = "ai", "With the bot"
        WAITING = "waiting", "Waiting for an agent"
        ACTIVE = "active", "With an agent"
        AWAITING = "awaiting_customer", "Waiting for the customer"
        RESOLVED = "resolved", "Resolved"
        CLOSED = "closed", "Closed"

    class Resolution(models.TextChoices):
        """Who resolved a resolved or closed conversation (README, "How a conversation ends")."""

        BOT = "bot", "Resolved by the bot"
        AGENT = "agent", "Resolved by an agent"
        ABANDONED = "abandoned", "Abandoned"

    class Priority(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        URGENT = "urgent", "Urgent"

    class Channel(models.TextChoices):
        WIDGET = "widget", "Widget"
        API = "api", "API"
        PLAYGROUND = "playground", "Playground"

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="conversations")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="conversations")
    channel = models.CharField(max_length=12, choices=Channel.choices, default=Channel.WIDGET)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.AI)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.MEDIUM)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    queue = models.CharField(max_length=8, choices=Queue.choices, default=Queue.TIER1)
    # VADER compound score of the customer's recent messages, -1 (angry) … 1 (happy).
    sentiment = models.FloatField(null=True, blank=True)
    # conversations/assessment.py: the level of the latest customer message and the frustration
    # accumulated over this conversation and the customer's recent contacts, 0–1.
    sentiment_level = models.CharField(max_length=10, blank=True)
    frustration = models.FloatField(default=0.0)
    # The newest message an agent has seen in the console: customer messages after it are
    # unread (the queue's badge).
    agent_seen_message_id = models.BigIntegerField(default=0)
    # When the current handoff must have had an agent's answer; past it the priority is bumped
    # and agents re-notified, and the next deadline is set (escalation/tasks.py).
    response_due_at = models.DateTimeField(null=True, blank=True)
    handoff_reason = models.CharField(max_length=200, blank=True)
    handoff_at = models.DateTimeField(null=True, blank=True)
    # A rolling summary of turns older than the window the pipeline reads verbatim.
    summary = models.TextField(blank=True)
    # Blank while open; set when it is resolved or closed, cleared when it reopens.
    resolution = models.CharField(max_length=10, choices=Resolution.choices, blank=True)
    # Times the customer came back to it within the bot's reopen window after a resolution.
    reopened_count = models.PositiveSmallIntegerField(default=0)
    # Customer satisfaction, 1–5, asked for once, after the conversation is resolved.
    csat = models.PositiveSmallIntegerField(null=True, blank=True)
    csat_comment = models.TextField(blank=True)
    csat_at = models.DateTimeField(null=True, blank=True)
    # "The bot should have handled this": an agent's verdict when resolving, with an optional
    # note; such conversations lead the knowledge-gaps report (issue 16's learning loop).
    bot_missed = models.BooleanField(default=False)
    bot_missed_note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [
            models.Index(fields=["bot", "status", "-updated_at"], name="conversation_queue"),
            models.Index(fields=["customer", "-created_at"], name="conversation_customer"),
            models.Index(fields=["status", "response_due_at"], name="conversation_response_due"),
            # Conversation history, newest first, paged by (created_at, id) (escalation/history).
            models.Index(fields=["-created_at", "-id"], name="conversation_newest"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer} ({self.status})"

    @property
    def bot_may_answer(self) -> bool:
        """The bot stops the moment a human is involved: only `ai` conversations get answers."""
        return self.status == self.Status.AI

    @property
    def with_bot(self) -> bool:
        """The bot has it: answering (`ai`) or waiting for the customer after its answer."""
        return self.status == self.Status.AI or (
            self.status == self.Status.AWAITING and self.assigned_agent_id is None
        )

    @property
    def with_agent(self) -> bool:
        """An agent has it: active, or waiting for the customer after the agent's reply."""
        return self.status == self.Status.ACTIVE or (
            self.status == self.Status.AWAITING and self.assigned_agent_id is not None
        )


# The text search configuration of the history's index: English stemming ("refunds" finds
# "refund"); words of other languages are still found as written.
SEARCH_CONFIG = "english"


class Message(models.Model):
    class Sender(models.TextChoices):
        USER = "user", "Customer"
        AI = "ai", "Bot"
        AGENT = "agent", "Agent"
        SYSTEM = "system", "System"

    class State(models.TextChoices):
        PENDING = "pending", "Being written"
        COMPLETE = "complete", "Complete"
        FAILED = "failed", "Failed"

    class Outcome(models.TextChoices):
        ANSWERED = "answered", "Answered"
        CLARIFIED = "clarified", "Asked to clarify"
        DEFLECTED = "deflected", "Deflected"
        LOW_CONFIDENCE = "low_confidence", "Answered with low confidence"
        HANDOFF_PROPOSED = "handoff_proposed", "Offered a person"
        HANDOFF = "handoff", "Handed off"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    sender = models.CharField(max_length=8, choices=Sender.choices)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField(blank=True)
    # An agent's note for colleagues: never sent to the customer (payloads, selectors).
    internal = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.COMPLETE)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    # [{"n": 1, "chunk_id", "document_id", "title", "url"}], each one a retrieved chunk.
    citations = models.JSONField(default=list, blank=True)
    # What the widget renders next to the text: {"suggestions": [...], "disclaimer": "...",
    # "offer_human": true}.
    extras = models.JSONField(default=dict, blank=True)
    requires_followup = models.BooleanField(default=False)
    # The sender's own id for the message: a resend after a dropped socket is recognised, not
    # stored twice. NULL rather than "" when absent, so unique_client_message ignores it.
    client_message_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # Every pipeline step: category, rewritten query, retrieved chunks and scores, gates,
    # model, tokens and timings (STYLE.md 5).
    trace = models.JSONField(default=dict, blank=True)
    # The customer's message this one answers (bot replies only).
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replies"
    )
    feedback = models.SmallIntegerField(null=True, blank=True, help_text="1 helpful, -1 not.")
    # The customer's answer to "Did that answer your question?" (bot answers only): True yes,
    # False no, None not answered.
    confirmed = models.BooleanField(null=True, blank=True)
    # Customer messages: VADER compound score and escalation signals
    # (conversations/assessment.py), e.g. ["all_caps", "legal_threat"].
    sentiment = models.FloatField(null=True, blank=True)
    signals = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_message_id"],
                condition=Q(client_message_id__isnull=False),
                name="unique_client_message",
            )
        ]
        indexes = [
            models.Index(fields=["state", "created_at"], name="message_state"),
            # The analytics refresh asks every minute which messages changed since its last
            # run (a thumbs down on an old answer changes that day's figures). BRIN: a few
            # pages, cheap to keep, and it does not stop PostgreSQL's HOT updates of the
            # streamed answer.
            BrinIndex(fields=["updated_at"], name="message_updated", autosummarize=True),
            # Full-text search of the history (escalation/history_selectors.py): the query must
            # spell the same expression (SEARCH_CONFIG) for PostgreSQL to use it. An expression
            # rather than a stored tsvector column: no table rewrite and no wider rows; the
            # price is recomputing a matched row's vector on recheck (phrases, the first page).
            GinIndex(SearchVector("text", config=SEARCH_CONFIG), name="message_search"),
        ]

    def __str__(self) -> str:
        return f"{self.sender}: {self.text[:60]}"


class Transition(models.Model):
    """One step of a conversation's state machine, for the audit trail: who moved it, why, when.
    Written by conversations.services for every status change."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="transitions"
    )
    from_status = models.CharField(max_length=20, choices=Conversation.Status.choices)
    to_status = models.CharField(max_length=20, choices=Conversation.Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        # The analytics refresh's every-minute "which transitions are new": rows are only ever
        # appended, in created_at order, which is what BRIN is for.
        indexes = [BrinIndex(fields=["created_at"], name="transition_created", autosummarize=True)]

    def __str__(self) -> str:
        return f"#{self.conversation_id}: {self.from_status} → {self.to_status}"


class ActionCall(models.Model):
    """One action the bot called (or asked about) in a conversation: what the runner persists
    of a turn's action calls (conversations/pipeline/actions.py decides them, writing nothing).

    - `asking`: a required argument is missing; the bot's message asked for it and the
      customer's next message may supply it (the pipeline reads the latest asking call).
    - `pending_confirmation`: the card "Refund $20 for order 1234?" waits for Confirm or
      Cancel; moved on once, under the row lock (chat.services.action_confirm).
    - `done`: ran (or was refused by policy, verification, the schema): `outcome` says how.
    - `cancelled` (the customer said no), `dropped` (the customer moved on instead of
      answering the question).

    `record` is actions.services.ActionResult.record(): name, arguments, outcome, status,
    error, timings. Never a URL or a secret, so it may be shown to members.
    """

    class State(models.TextChoices):
        ASKING = "asking", "Asking for an argument"
        PENDING_CONFIRMATION = "pending_confirmation", "Waiting for the customer's confirmation"
        CONFIRMED = "confirmed", "Confirmed, running"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled by the customer"
        DROPPED = "dropped", "Dropped (the customer moved on)"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="action_calls"
    )
    # The bot message that asked, showed the card, or gave the result.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="action_calls", null=True, blank=True
    )
    action = models.ForeignKey(
        "actions.Action", on_delete=models.SET_NULL, null=True, related_name="calls"
    )
    name = models.CharField(max_length=64)  # kept when the action is deleted
    arguments = models.JSONField(default=dict, blank=True)
    # The argument the bot asked for (state asking).
    asked_for = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=24, choices=State.choices)
    outcome = models.CharField(max_length=24, blank=True)
    # The confirmation card's exact text (pending_confirmation).
    confirmation = models.TextField(blank=True)
    record = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["conversation", "state"], name="action_call_state")]

    def __str__(self) -> str:
        return f"#{self.conversation_id} {self.name} ({self.state})"
