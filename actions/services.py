"""Running one action, safely: actions.services.action_run.

The controls run in a fixed order, each before anything leaves this instance, and none is left
to the model: the arguments against the schema → who may use it → the policy limit (above it a
person takes over; nothing is called) → the customer's confirmation → the call itself, through
the one guarded HTTP client (config.netguard), signed (actions.signing), with a size cap and the
action's timeout → the result template. Trouble at the endpoint never raises and never invents
a result: the customer reads that the check failed and is offered a person; the trace gets why.
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import quote

import httpx2 as httpx
import jsonschema
from django.conf import settings
from django.db import models
from jinja2 import TemplateError
from referencing import Registry
from referencing.exceptions import NoSuchResource

from actions.models import Action, Audience, Method, url_placeholders
from actions.signing import idempotency_key_check, signed_headers
from actions.templating import template_render
from config.netguard import AddressRefused, error_reason, guarded_client

MAX_RESPONSE_BYTES = 256 * 1024
DEMO_SHOP_PATH = "/demo/shop/api/"

FAILED_TEXT = "I couldn't check that right now."
NOT_FOUND_TEXT = "I couldn't find that on your account."
UNVERIFIED_TEXT = (
    "I can only do that for a signed-in customer. Please sign in on our site, then ask me again."
)
HANDOFF_TEXT = "That's more than I can do on my own, so I'm passing it to a person on our team."
INVALID_TEXT = "I couldn't use those details."


def _refuse_retrieval(uri: str):
    raise NoSuchResource(ref=uri)


# jsonschema fetches a remote "$ref" by itself, unguarded, unless given a registry: this one
# resolves only references inside the schema (the model refuses others when saved).
NO_REMOTE_REFS = Registry(retrieve=_refuse_retrieval)


class Outcome(models.TextChoices):
    OK = "ok", "Done"
    NEEDS_CONFIRMATION = "needs_confirmation", "Waiting for the customer's confirmation"
    HANDOFF = "handoff", "Handed to a person (above the limit)"
    UNVERIFIED = "unverified", "Customer not verified"
    INVALID = "invalid", "Invalid arguments"
    NOT_FOUND = "not_found", "Not found"
    FAILED = "failed", "Failed"


@dataclass
class ActionResult:
    action: Action
    outcome: str
    arguments: dict
    text: str = ""
    confirmation: str = ""
    error: str = ""
    status: int | None = None
    endpoint_ms: float = 0.0
    own_ms: float = 0.0
    handoff_reason: str = ""

    def record(self) -> dict:
        """What a trace, an event or an analytics row may hold: never the URL (it may carry a
        token) and never the secret header."""
        return {
            "name": self.action.name,
            "arguments": self.arguments,
            "outcome": str(self.outcome),
            "status": self.status,
            "error": self.error,
            "endpoint_ms": round(self.endpoint_ms, 1),
            "own_ms": round(self.own_ms, 1),
        }

    @property
    def offer_person(self) -> bool:
        return self.outcome in (Outcome.FAILED, Outcome.HANDOFF)


def action_run(
    *,
    action: Action,
    arguments: dict,
    user_id: str | None,
    confirmed: bool = False,
    idempotency_key: str | None = None,
) -> ActionResult:
    """Runs `action` for the customer `user_id` (the verified id, or None for an anonymous
    customer). `confirmed` is the customer's tap on the confirmation card. Makes at most one
    HTTP call; writes nothing to the database.

    `idempotency_key` names the logical call: the same key whenever the same call may be sent
    again (a turn retried after a crash), so the endpoint can answer a repeat with the first
    result instead of running it twice. Sent as the signed Idempotency-Key header
    (actions.signing); ValueError, before anything runs, for a key that may not be sent."""
    if idempotency_key is not None:
        idempotency_key_check(idempotency_key)
    started = time.perf_counter()
    result = _run(
        action=action,
        arguments=arguments,
        user_id=user_id,
        confirmed=confirmed,
        idempotency_key=idempotency_key,
    )
    result.own_ms = max(0.0, (time.perf_counter() - started) * 1000 - result.endpoint_ms)
    return result


def _run(*, action, arguments, user_id, confirmed, idempotency_key) -> ActionResult:
    def result(outcome, **fields) -> ActionResult:
        return ActionResult(action=action, outcome=outcome, arguments=arguments, **fields)

    if not isinstance(arguments, dict):
        arguments = {}
        return result(Outcome.INVALID, text=INVALID_TEXT, error="schema: arguments not an object")
    try:
        problem = _schema_problem(action, arguments)
    except Exception as exc:  # a schema saved around the admin's check ($ref to nowhere, …)
        return result(Outcome.FAILED, text=FAILED_TEXT, error=f"schema unusable: {exc}")
    if problem:
        text, error = problem
        return result(Outcome.INVALID, text=text, error=f"schema: {error}")
    if action.audience == Audience.VERIFIED and not user_id:
        return result(Outcome.UNVERIFIED, text=UNVERIFIED_TEXT, error="unverified")
    if action.limit_argument and action.limit_max is not None:
        over = _over_limit(action, arguments)
        if isinstance(over, ActionResult):
            return over
        if over:
            return result(
                Outcome.HANDOFF, text=HANDOFF_TEXT, error="over_limit", handoff_reason=over
            )
    if action.requires_confirmation and not confirmed:
        try:
            summary = template_render(action.confirmation_template, {**arguments})
        except Exception as exc:  # an admin's template: any error is the template's
            return result(Outcome.FAILED, text=FAILED_TEXT, error=_template_error(exc))
        return result(Outcome.NEEDS_CONFIRMATION, text=summary, confirmation=summary)
    return _call(
        action=action,
        arguments=arguments,
        user_id=user_id,
        idempotency_key=idempotency_key,
        result=result,
    )


def _schema_problem(action: Action, arguments: dict) -> tuple[str, str] | None:
    """(what the customer reads, what the trace says), or None when the arguments fit."""
    validator = jsonschema.Draft202012Validator(action.input_schema, registry=NO_REMOTE_REFS)
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is None:
        return None
    if error.validator == "required":
        missing = action_missing(action=action, arguments=arguments)
        if missing:
            return action_question(action=action, field=missing[0]), error.message
    field = next((str(p) for p in error.absolute_path), "")
    if field and field in action.properties:
        text = f"That doesn't look like a valid {_label(action, field)}."
        return text, f"{field}: {error.message}"
    return INVALID_TEXT, error.message


def _over_limit(action: Action, arguments: dict) -> str | ActionResult:
    """The handoff reason when the limit's argument is above the maximum, "" when within it.
    Missing or not a number: INVALID (the limit is never skipped)."""
    value = arguments.get(action.limit_argument)
    try:
        amount = Decimal(str(value))
        if not amount.is_finite():
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        question = action_question(action=action, field=action.limit_argument)
        return ActionResult(
            action=action,
            outcome=Outcome.INVALID,
            arguments=arguments,
            text=question,
            error=f"schema: {action.limit_argument} must be a number for the limit",
        )
    if amount <= action.limit_max:
        return ""
    try:
        summary = template_render(action.confirmation_template, {**arguments})
    except Exception:  # the reason still names the argument and the limit
        summary = ""
    summary = summary.rstrip(" .") or f"{action.name} with {json.dumps(arguments, default=str)}"
    limit = f"{action.limit_max:.2f}"
    return f"{summary}: {action.limit_argument} {amount:.2f} is above the limit of {limit}"


def _demo_shop(url: str) -> bool:
    """The demo shop this instance serves itself (settings.DEMO_SHOP) is reached on its own,
    usually local, address; nothing else private is, on this instance or beside it. Compared
    as httpx will request it: "/demo/shop/api/../../admin" is "/demo/admin"."""
    if not settings.DEMO_SHOP:
        return False
    try:
        target, site = httpx.URL(url), httpx.URL(settings.SITE_URL)
    except (httpx.InvalidURL, ValueError):
        return False
    return (target.scheme, target.host, target.port) == (
        site.scheme,
        site.host,
        site.port,
    ) and target.path.startswith(DEMO_SHOP_PATH)


def action_url(*, action: Action, arguments: dict) -> tuple[str, dict]:
    """The URL with its placeholders filled (each URL-quoted, so an argument cannot change the
    path: "../admin" stays one segment), and the arguments left for the query."""
    names = set(url_placeholders(action.url_template))
    values = {name: quote(_plain(arguments.get(name, "")), safe="") for name in names}
    url = action.url_template.format_map(values)
    rest = {k: _plain(v) for k, v in arguments.items() if k not in names}
    return url, rest


def _plain(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _template_error(exc: Exception) -> str:
    if isinstance(exc, TemplateError):
        return f"template: {exc}"
    return f"template: {type(exc).__name__}: {exc}"


def _call(*, action, arguments, user_id, idempotency_key, result) -> ActionResult:
    try:
        url, rest = action_url(action=action, arguments=arguments)
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        return result(Outcome.FAILED, text=FAILED_TEXT, error=f"url template: {exc}")
    if action.method == Method.POST:
        body, params = json.dumps(arguments).encode(), None
    else:
        body, params = b"", rest or None
    headers = signed_headers(
        secret=action.bot.secret_key,
        user_id=user_id,
        body=body,
        idempotency_key=idempotency_key,
    )
    headers["Accept"] = "application/json"
    if action.method == Method.POST:
        headers["Content-Type"] = "application/json"
    if action.secret_header_name and action.secret_header_value:
        headers[action.secret_header_name] = action.secret_header_value
    allow_private = settings.ACTIONS_ALLOW_PRIVATE_NETWORKS or _demo_shop(url)
    deadline = action.timeout_seconds
    status = None
    client = guarded_client(
        allow_private=allow_private,
        timeout=httpx.Timeout(deadline),
        follow_redirects=False,  # a redirect could carry the signed headers elsewhere
        verify=_ssl_context(),
    )
    started = time.perf_counter()  # the endpoint's time starts here; the rest is Handoff's
    try:
        with (
            client,
            client.stream(
                action.method, url, params=params, content=body or None, headers=headers
            ) as response,
        ):
            status = response.status_code
            raw = bytearray()
            for chunk in response.iter_bytes():
                raw.extend(chunk)
                if len(raw) > MAX_RESPONSE_BYTES:
                    raise _TooLarge
                if time.perf_counter() - started > deadline:
                    raise httpx.ReadTimeout("the whole response took too long")
    except AddressRefused as exc:
        return result(Outcome.FAILED, text=FAILED_TEXT, error=f"address refused: {exc}")
    except httpx.TimeoutException:
        return result(
            Outcome.FAILED,
            text=FAILED_TEXT,
            error="timeout",
            status=status,
            endpoint_ms=_ms(started),
        )
    except _TooLarge:
        return result(
            Outcome.FAILED,
            text=FAILED_TEXT,
            error=f"response over {MAX_RESPONSE_BYTES // 1024} KB",
            status=status,
            endpoint_ms=_ms(started),
        )
    except httpx.HTTPError as exc:
        return result(
            Outcome.FAILED,
            text=FAILED_TEXT,
            error=f"network: {error_reason(exc)}",
            endpoint_ms=_ms(started),
        )
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        return result(Outcome.FAILED, text=FAILED_TEXT, error=f"url: {exc}")
    endpoint_ms = _ms(started)
    if status == 404:
        return result(
            Outcome.NOT_FOUND,
            text=NOT_FOUND_TEXT,
            error="http_404",
            status=status,
            endpoint_ms=endpoint_ms,
        )
    if not 200 <= status < 300:
        return result(
            Outcome.FAILED,
            text=FAILED_TEXT,
            error=f"http_{status}",
            status=status,
            endpoint_ms=endpoint_ms,
        )
    try:
        data = json.loads(bytes(raw)) if raw else None
    except (ValueError, RecursionError):
        return result(
            Outcome.FAILED,
            text=FAILED_TEXT,
            error="response: not JSON",
            status=status,
            endpoint_ms=endpoint_ms,
        )
    context = {"arguments": arguments, "response": data}
    if isinstance(data, dict):
        context.update(data)
    try:
        text = template_render(action.result_template, context)
    except Exception as exc:  # an admin's template over a stranger's JSON: never a crash
        return result(
            Outcome.FAILED,
            text=FAILED_TEXT,
            error=_template_error(exc),
            status=status,
            endpoint_ms=endpoint_ms,
        )
    if not text:
        return result(
            Outcome.FAILED,
            text=FAILED_TEXT,
            error="template: rendered nothing",
            status=status,
            endpoint_ms=endpoint_ms,
        )
    return result(Outcome.OK, text=text, status=status, endpoint_ms=endpoint_ms)


@functools.cache
def _ssl_context():
    # Loading the CA bundle costs ~25 ms; one context serves every call (it is thread-safe).
    return httpx.create_ssl_context()


class _TooLarge(Exception):
    pass


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# --- Arguments without an LLM: from the message, by the schema's patterns --------------------
def _label(action: Action, field: str) -> str:
    prop = action.properties.get(field) or {}
    label = str(prop.get("title") or prop.get("description") or field.replace("_", " "))
    return label.strip().rstrip("?.").strip() or field


def action_question(*, action: Action, field: str) -> str:
    """What the bot asks for a missing argument: the property's description or title
    ("your order number" → "What's your order number?"); a description that is already a
    question is asked as written."""
    prop = action.properties.get(field) or {}
    described = str(prop.get("description") or "").strip()
    if described.endswith("?"):
        return described
    label = _label(action, field)
    if label.lower().startswith(("your ", "the ")):
        return f"What's {label[0].lower()}{label[1:]}?"
    return f"What's your {label[0].lower()}{label[1:]}?"


def action_missing(*, action: Action, arguments: dict) -> list[str]:
    """The schema's required fields not given (empty strings count as not given)."""
    required = action.input_schema.get("required") or []
    return [
        name
        for name in required
        if name not in arguments or arguments[name] is None or arguments[name] == ""
    ]


def action_arguments_from_text(*, action: Action, text: str) -> dict:
    """The arguments a message gives, found by each property's `pattern` (its first group when
    it has one, else the whole match), then typed per the schema (integer, number, boolean,
    string). A property whose `enum` value appears in the text takes it. Each piece of the text
    goes to one property only: "$30 for order 1235" gives the amount the "$30" and the order
    number the "1235"."""
    found: dict = {}
    taken: list[tuple[int, int]] = []
    # The most specific pattern (the longest) picks first: the stored schema's key order is not
    # the admin's (PostgreSQL's jsonb sorts keys), and "\$\s?(\d+)" must claim "$1000"
    # before "\d{4,10}" takes it for an order number.
    ordered = sorted(
        action.properties.items(),
        key=lambda item: -len(str(item[1].get("pattern", ""))) if isinstance(item[1], dict) else 0,
    )
    for name, prop in ordered:
        if not isinstance(prop, dict):
            continue
        pattern = prop.get("pattern")
        if isinstance(pattern, str) and pattern:
            value = _search(pattern, text, taken)
            if value is not None:
                typed = _typed(prop, value)
                if typed is not None:
                    found[name] = typed
                continue
        enum = prop.get("enum")
        if isinstance(enum, list):
            for option in enum:
                if isinstance(option, str) and re.search(
                    rf"\b{re.escape(option)}\b", text, re.IGNORECASE
                ):
                    found[name] = option
                    break
    return found


def _search(pattern: str, text: str, taken: list[tuple[int, int]]) -> str | None:
    # A schema's pattern is usually anchored to validate a whole value ("^\d{4}$"); in a
    # sentence the value is a word among others.
    core = pattern.removeprefix("^").removesuffix("$")
    try:
        compiled = re.compile(rf"(?<!\w)(?:{core})(?!\w)")
    except re.error:
        return None
    for match in compiled.finditer(text):
        group = 1 if compiled.groups and match.group(1) is not None else 0
        span = match.span()
        if any(start < span[1] and span[0] < end for start, end in taken):
            continue
        taken.append(span)
        return match.group(group)
    return None


def _typed(prop: dict, value: str):
    kind = prop.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    cleaned = value.replace(",", "").strip()
    if "integer" in kinds:
        try:
            return int(cleaned)
        except ValueError:
            return None
    if "number" in kinds:
        try:
            number = Decimal(cleaned.lstrip("$€£"))
        except InvalidOperation:
            return None
        return int(number) if number == number.to_integral_value() else float(number)
    if "boolean" in kinds:
        return value.lower() in {"yes", "true", "y", "1"}
    return value


def action_put(*, bot, name: str, **fields) -> Action:
    """Creates `bot`'s action `name`, or updates it to `fields` (seed_demo refreshes its demo
    actions this way: the instance's address may have changed). Validated like the admin's
    form: a bad schema or template raises ValidationError, nothing is saved."""
    action = Action.objects.filter(bot=bot, name=name).first() or Action(bot=bot, name=name)
    for field, value in fields.items():
        setattr(action, field, value)
    action.full_clean()
    action.save()
    return action
