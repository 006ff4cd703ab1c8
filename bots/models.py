"""Tenants and their people and bots.

An Organization is the tenant: every row of customer data hangs off one, and every read of it is
scoped through selectors. Roles: owners manage members and billing-level settings, admins
configure bots and knowledge (also in Django admin), agents work the queue.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

PERSON_NAME_MAX_LENGTH = 80


def validate_person_name(value: str) -> None:
    """A name is read in one line: the chat's "Sam Rivera joined the chat", an e-mail subject."""
    if any(unicodedata.category(ch) in {"Cc", "Zl", "Zp"} for ch in value):
        raise ValidationError("Write your name on one line, without tabs or line breaks.")


class User(AbstractUser):
    """People who sign in: owners, admins and agents. Customers in the widget are not users.

    E-mail is the login and is unique; the username is kept only because allauth and the admin
    expect one, and is generated from the e-mail.
    """

    email = models.EmailField("email address", unique=True)
    # One name per person whatever the organization, as Intercom and Zendesk do: customers read
    # it in the chat, teammates in the console and its e-mails. Asked at sign-up; empty only
    # for accounts made another way (createsuperuser, rows older than the field).
    name = models.CharField(
        "name",
        max_length=PERSON_NAME_MAX_LENGTH,
        blank=True,
        validators=[validate_person_name],
        help_text="Shown to customers in the chat and to teammates in the console.",
    )

    @property
    def display_name(self) -> str:
        """What everyone else reads for this person: use it wherever a person is named."""
        return self.name or self.get_full_name() or self.email.split("@")[0]


class Organization(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    # Slack or Discord incoming webhook: told of high and urgent handoffs
    # (escalation/notifications.py).
    webhook_url = models.URLField(
        "chat webhook",
        blank=True,
        max_length=500,
        help_text="A Slack or Discord incoming-webhook URL. High and urgent conversations "
        "waiting for a person are posted there.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    AGENT = "agent", "Agent"


# Roles that may configure the organization (bots, knowledge, rules, members).
MANAGER_ROLES = (Role.OWNER, Role.ADMIN)


class Availability(models.TextChoices):
    ONLINE = "online", "Online"
    AWAY = "away", "Away"
    OFFLINE = "offline", "Offline"


def _all_queues() -> list[str]:
    return ["tier1", "tier2", "manager"]


class Membership(models.Model):
    Availability = Availability

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.AGENT)
    # The agent console: online while a console is open (away when the agent says so), how
    # many conversations the agent takes at once, and which queues they serve and are
    # notified for (conversations.models.Queue values).
    availability = models.CharField(
        max_length=8, choices=Availability.choices, default=Availability.OFFLINE
    )
    capacity = models.PositiveSmallIntegerField(
        default=5, help_text="Conversations this person handles at once; claiming more is refused."
    )
    queues = ArrayField(
        models.CharField(max_length=8),
        default=_all_queues,
        blank=True,
        help_text="Queues this person works and is notified for: tier1, tier2, manager.",
    )
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # The weekly e-mail of what the bot could not answer goes to owners; each may opt out.
    gaps_digest = models.BooleanField(
        default=True, help_text="Receive the weekly e-mail of questions the bot could not answer."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="unique_membership")
        ]
        ordering = ["organization__name", "user__email"]

    def __str__(self) -> str:
        return f"{self.user} · {self.organization} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in MANAGER_ROLES


def _invitation_token() -> str:
    return secrets.token_urlsafe(32)


def _invitation_expiry():
    return timezone.now() + timedelta(days=7)


class Invitation(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="invitations"
    )
    email = models.EmailField()
    # What the inviter called them: pre-fills the sign-up form, where the invitee may change it.
    name = models.CharField(
        max_length=PERSON_NAME_MAX_LENGTH, blank=True, validators=[validate_person_name]
    )
    role = models.CharField(
        max_length=10,
        choices=[(Role.ADMIN, "Admin"), (Role.AGENT, "Agent")],
        default=Role.AGENT,
    )
    token = models.CharField(max_length=64, unique=True, default=_invitation_token, editable=False)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # One open invitation per address and organization; re-inviting resends it.
            models.UniqueConstraint(
                fields=["organization", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="unique_open_invitation",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.organization}"

    @property
    def is_open(self) -> bool:
        return (
            self.accepted_at is None
            and self.revoked_at is None
            and self.expires_at > timezone.now()
        )


def _public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


def _secret_key() -> str:
    return "sk_" + secrets.token_urlsafe(32)


def validate_origin(value: str) -> None:
    """An origin is scheme://host[:port] with nothing after it, or `*` for any site."""
    if value == "*":
        return
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.path not in {"", "/"}:
        raise ValidationError(
            f"{value!r} is not an origin; write it as https://example.com (scheme and host, "
            f"optional port, no path), or * for any site."
        )
    if parts.query or parts.fragment:
        raise ValidationError(f"{value!r} is not an origin: remove the query or fragment.")


def _default_embedding_model() -> str:
    return settings.EMBEDDING_MODEL


colour_validator = RegexValidator(r"^#[0-9a-fA-F]{6}$", "Use a hex colour such as #2563eb.")


class NotAnswered(models.TextChoices):
    """What the widget does when the customer answers "No" to "Did that answer your question?"."""

    OFFER = "offer", "Offer a person"
    HANDOFF = "handoff", "Hand off to a person"


class Bot(models.Model):
    NotAnswered = NotAnswered

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=80)
    slug = models.SlugField(max_length=60)
    # Goes into the public script tag: identifies the bot, grants nothing by itself.
    public_key = models.CharField(max_length=40, unique=True, default=_public_key, editable=False)
    # Signs customer identities (HMAC) and API calls; never shown in the widget.
    secret_key = models.CharField(max_length=64, default=_secret_key, editable=False)
    greeting = models.CharField(
        max_length=300, default="Hi! I'm here to help. What can I do for you?"
    )
    persona = models.TextField(
        blank=True,
        default="You are a friendly, concise support assistant.",
        help_text="How the bot speaks. It never changes what the bot knows.",
    )
    colour = models.CharField(max_length=7, default="#2563eb", validators=[colour_validator])
    allowed_origins = ArrayField(
        models.CharField(max_length=200),
        default=list,
        blank=True,
        help_text="Sites that may embed the widget, comma-separated, e.g. "
        "https://shop.example.com. Empty: only this server's own pages.",
    )
    # Chunks record their model and retrieval reads only the active one: changing
    # `embedding_model` re-embeds the knowledge in the worker, which then flips
    # `embedding_model_active` in one step (knowledge/switch.py).
    embedding_model = models.CharField(
        max_length=100,
        default=_default_embedding_model,
        help_text="local:all-MiniLM-L6-v2 (offline, default) or openai:<model> for an "
        "OpenAI-compatible endpoint. Changing it re-embeds this bot's knowledge in the "
        "background; the bot keeps answering with the current model until that is done.",
    )
    embedding_model_active = models.CharField(
        max_length=100, default=_default_embedding_model, editable=False
    )
    embedding_error = models.TextField(blank=True, editable=False)
    # The bot's domain adapter (knowledge/adaptation.py), trained by the worker from its
    # articles; empty until there is one. Retrieval uses it next to the active model.
    embedding_adapter = models.CharField(max_length=100, blank=True, editable=False)
    # The chat pipeline's relevance bars for one version of the knowledge
    # (conversations/pipeline/gate.py), computed by the process that changed the knowledge, so
    # no customer's turn waits for them: {"version": [...], "weak", "strong", "details"}.
    gate_calibration = models.JSONField(default=dict, blank=True, editable=False)
    widget_position = models.CharField(
        max_length=5, choices=[("right", "Bottom right"), ("left", "Bottom left")], default="right"
    )
    # The answering model. Empty fields fall back to the server's LLM_* settings; with no key
    # and no base URL anywhere, the bot answers extractively from its knowledge (no LLM).
    llm_base_url = models.URLField(
        "LLM base URL",
        blank=True,
        help_text="An OpenAI-compatible endpoint (OpenAI, Azure, Ollama, vLLM). "
        "Empty: the server's LLM_BASE_URL.",
    )
    llm_model = models.CharField(
        "LLM model", max_length=100, blank=True, help_text="Empty: the server's LLM_MODEL."
    )
    llm_api_key = models.CharField(
        "LLM API key", max_length=200, blank=True, help_text="Empty: the server's LLM_API_KEY."
    )
    response_minutes = models.PositiveSmallIntegerField(
        "minutes to a person's answer",
        default=5,
        help_text="A conversation waiting this long for an agent's first answer is raised one "
        "priority level and its queue is notified again.",
    )
    forbidden_phrases = models.TextField(
        blank=True,
        help_text="One per line, e.g. 'we guarantee a refund'. An answer containing one is "
        "never sent: the conversation goes to a person instead.",
    )
    # Public help pages (README "Help pages and citations"). On by default: the widget quotes
    # the same text to anyone who asks, and a citation should open where it came from.
    help_pages = models.BooleanField(
        "public help pages",
        default=True,
        help_text="Publish this bot's articles and FAQs as read-only help pages at "
        "/help/<organization>/<bot>/, which citations of uploaded documents link to. Off: those "
        "pages answer 404 and such citations name their source without a link.",
    )
    # How a conversation ends (README "How a conversation ends").
    ask_if_answered = models.BooleanField(
        "ask if the answer helped",
        default=True,
        help_text="After an answer from the knowledge, the widget asks “Did that answer your "
        "question?”. Yes resolves the conversation as resolved by the bot.",
    )
    not_answered = models.CharField(
        "when the customer says No",
        max_length=8,
        choices=NotAnswered.choices,
        default=NotAnswered.OFFER,
    )
    reopen_hours = models.PositiveSmallIntegerField(
        "hours to reopen",
        default=24,
        help_text="A customer who writes within this many hours of the resolution reopens the "
        "conversation; after it the conversation is closed and a new message starts a new one.",
    )
    inactivity_minutes = models.PositiveSmallIntegerField(
        "minutes of inactivity",
        default=30,
        validators=[MinValueValidator(1)],
        help_text="A conversation waiting this long for the customer after the bot's answer is "
        "closed: as resolved by the bot if the answer cited sources and the customer showed no "
        "dissatisfaction, else as abandoned.",
    )
    # The LLM's tool loop (actions): how many action calls one customer message may make.
    action_calls_per_turn = models.PositiveSmallIntegerField(
        "action calls per message",
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(5)],
        help_text="With an LLM, the most actions one customer message may run (1–5); past it "
        "the bot answers with what it has.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="unique_bot_slug")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Validated here, not as an item validator: ArrayField drops an item's message and
        # shows only "Item 1 in the array did not validate", which tells an admin nothing.
        errors = []
        for origin in self.allowed_origins:
            try:
                validate_origin(origin)
            except ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise ValidationError({"allowed_origins": errors})
        self.allowed_origins = [o.rstrip("/") for o in self.allowed_origins]

    @property
    def forbidden_phrase_list(self) -> list[str]:
        return [line.strip() for line in self.forbidden_phrases.splitlines() if line.strip()]

    def origin_allowed(self, origin: str | None) -> bool:
        if "*" in self.allowed_origins:
            return True
        if not origin:
            return False
        return origin.rstrip("/").lower() in {o.rstrip("/").lower() for o in self.allowed_origins}
