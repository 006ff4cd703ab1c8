"""Actions: calls a bot makes to the business's own systems ("Where's my order 1234?").

An admin configures each one per bot: what the model reads (name, description, the input's JSON
Schema), the business's endpoint (method, URL template, a secret header kept write-only), and
the controls Handoff enforces before any call, never left to the model: who may use it (anyone,
or only verified customers), a confirmation the customer taps, and a policy limit above which a
person takes over. actions.services.action_run runs one call through those controls.
"""

from __future__ import annotations

import re
import string

import jsonschema
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from jinja2 import TemplateSyntaxError

from actions.templating import template_parse

NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
# HTTP header names (RFC 9110 tokens); an empty name means no secret header.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers Handoff sets itself on every call: an admin's secret header may not replace them.
RESERVED_HEADERS = {
    "x-handoff-user-id",
    "x-handoff-timestamp",
    "x-handoff-signature",
    "idempotency-key",
    "content-type",
    "content-length",
    "host",
}


class Audience(models.TextChoices):
    ANYONE = "anyone", "Anyone"
    VERIFIED = "verified", "Only verified customers"


class Method(models.TextChoices):
    GET = "GET", "GET"
    POST = "POST", "POST"


def template_check(source: str) -> None:
    """A template that does not parse is refused when saved, not discovered by a customer."""
    try:
        template_parse(source)
    except TemplateSyntaxError as exc:
        raise ValidationError(f"Line {exc.lineno}: {exc.message}") from exc


def url_placeholders(url_template: str) -> list[str]:
    """The argument names a URL template fills in ("{order_id}")."""
    return [name for _, name, _, _ in string.Formatter().parse(url_template) if name]


def _refs(value) -> list[str]:
    """Every "$ref" in a schema: only references inside it are followed (no fetching)."""
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []


class Action(models.Model):
    Audience = Audience
    Method = Method

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="actions")
    name = models.SlugField(
        max_length=64,
        validators=[RegexValidator(NAME_PATTERN, "Use snake_case: lowercase letters, digits, _.")],
        help_text="What the model calls, in snake_case, e.g. lookup_order.",
    )
    description = models.TextField(
        help_text="What the model reads to decide when to call it: say what it does and when."
    )
    input_schema = models.JSONField(
        default=dict,
        help_text='A JSON Schema object, e.g. {"type": "object", "properties": {"order_id": '
        '{"type": "string", "pattern": "\\\\d{3,}", "description": "your order number"}}, '
        '"required": ["order_id"]}. A property\'s pattern finds it in a message when there is '
        "no LLM.",
    )
    method = models.CharField(max_length=4, choices=Method.choices, default=Method.GET)
    url_template = models.CharField(
        "URL",
        max_length=500,
        help_text="The business's endpoint, e.g. https://shop.example/api/orders/{order_id}. "
        "Arguments in braces are URL-quoted; a GET sends the others in the query, a POST "
        "sends every argument as its JSON body.",
    )
    # Write-only in admin, like the bot's keys: sent to the endpoint, never shown, never in a
    # trace, an event or the audit log.
    secret_header_name = models.CharField(
        max_length=100,
        blank=True,
        help_text="e.g. Authorization or X-Api-Key. Empty: no secret header.",
    )
    secret_header_value = models.CharField(max_length=500, blank=True)
    timeout_seconds = models.PositiveSmallIntegerField(
        default=5,
        validators=[MinValueValidator(1), MaxValueValidator(30)],
        help_text="Seconds the endpoint has to answer (1–30); past it the customer is told "
        "the check failed and offered a person.",
    )
    audience = models.CharField(
        "who may use it",
        max_length=8,
        choices=Audience.choices,
        default=Audience.VERIFIED,
        help_text="Only verified customers: the signed-in customer's id is sent, signed, so the "
        "endpoint answers for that customer only. Others are asked to sign in.",
    )
    requires_confirmation = models.BooleanField(
        default=False,
        help_text="For actions with side effects (a refund): the customer confirms on a card "
        "that shows exactly what will happen.",
    )
    confirmation_template = models.TextField(
        blank=True,
        validators=[template_check],
        help_text="What the card says, over the arguments, e.g. "
        "“Refund ${{ amount }} for order {{ order_id }}”.",
    )
    limit_argument = models.CharField(
        max_length=64,
        blank=True,
        help_text="A numeric argument Handoff checks before any call, e.g. amount.",
    )
    limit_max = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Above it the request is handed to a person (tier 2), never called.",
    )
    result_template = models.TextField(
        validators=[template_check],
        help_text="What the customer reads, over the JSON response, e.g. “Order {{ id }} is "
        "{{ status }}, arriving {{ eta }}.” A field the response lacks fails the call honestly.",
    )
    progress_text = models.CharField(
        max_length=120,
        default="One moment…",
        help_text="Shown in the widget while it runs, e.g. “Checking your order…”.",
    )
    intent = models.CharField(
        max_length=100,
        blank=True,
        help_text="An intent's name: without an LLM, a message matching it runs this action.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["bot", "name"]
        constraints = [
            models.UniqueConstraint(fields=["bot", "name"], name="unique_action_name"),
            models.CheckConstraint(
                condition=models.Q(timeout_seconds__gte=1, timeout_seconds__lte=30),
                name="action_timeout_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def properties(self) -> dict:
        props = self.input_schema.get("properties") if isinstance(self.input_schema, dict) else {}
        return props if isinstance(props, dict) else {}

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        schema = self.input_schema
        if not isinstance(schema, dict) or schema.get("type") != "object":
            errors.setdefault("input_schema", []).append(
                'The input schema must be a JSON object with "type": "object".'
            )
        else:
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as exc:
                path = "/".join(str(p) for p in exc.absolute_path) or "the schema"
                errors.setdefault("input_schema", []).append(f"At {path}: {exc.message}")
            for ref in _refs(schema):
                if not ref.startswith("#"):
                    errors.setdefault("input_schema", []).append(
                        f"$ref {ref!r} points outside the schema: define it under $defs and "
                        "refer to it as #/$defs/…."
                    )
        try:
            placeholders = url_placeholders(self.url_template or "")
        except ValueError as exc:
            placeholders = []
            errors.setdefault("url_template", []).append(
                f"Braces must pair up around an argument's name, e.g. {{order_id}} ({exc})."
            )
        for name in placeholders:
            if name not in self.properties:
                errors.setdefault("url_template", []).append(
                    f"{{{name}}} is not a property of the input schema."
                )
        if self.url_template and not self.url_template.startswith(("http://", "https://")):
            errors.setdefault("url_template", []).append("Use an http:// or https:// address.")
        header = self.secret_header_name.strip()
        if header and not HEADER_NAME.match(header):
            errors.setdefault("secret_header_name", []).append("Not a valid HTTP header name.")
        elif header.lower() in RESERVED_HEADERS:
            errors.setdefault("secret_header_name", []).append(
                f"{header} is set by Handoff on every call; choose another header."
            )
        if bool(self.limit_argument) != (self.limit_max is not None):
            errors.setdefault("limit_max", []).append(
                "Set both the limit's argument and its maximum, or neither."
            )
        elif self.limit_argument and self.limit_argument not in self.properties:
            errors.setdefault("limit_argument", []).append(
                f"{self.limit_argument} is not a property of the input schema."
            )
        if self.requires_confirmation and not self.confirmation_template.strip():
            errors.setdefault("confirmation_template", []).append(
                "Say what the customer confirms: the card shows this text."
            )
        if errors:
            raise ValidationError(errors)
