"""Audit events as people read them: "Ian changed rule 'Billing' mode: offer → handoff"."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlsplit

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from audit.models import ConsoleEvent, InvitationEvent, MembershipEvent
from bots.models import Bot, User

# Fields an event carries for finding its place, not as what changed.
NOT_CHANGES = {"organization", "bot", "pgh_obj"}
LONG = 60


@dataclass
class Entry:
    at: datetime
    actor: str
    ip: str
    label: str
    text: str
    changes: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def line(self) -> str:
        """The whole row as one sentence."""
        if not self.changes:
            return self.text
        return f"{self.text} " + "; ".join(f"{name}: {a} → {b}" for name, a, b in self.changes)


def _plain(value) -> object:
    """A value as its JSON form, the way pgh_previous stores it."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _shown(value, *, name: str = "", users: dict | None = None) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "webhook_url":
        # An incoming-webhook URL is itself a credential: the host is enough to tell them apart.
        parts = urlsplit(str(value))
        return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "(set)"
    if name == "url_template":
        # An action's URL may carry a token in its query: the endpoint without it.
        parts = urlsplit(str(value))
        query = "?…" if parts.query else ""
        value = f"{parts.scheme}://{parts.netloc}{parts.path}{query}"
    if name == "assigned_agent" and users is not None:
        return users.get(value, f"#{value}")
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    text = " ".join(str(value).split())
    return text if len(text) <= LONG else text[: LONG - 1] + "…"


def _changes(event, users: dict) -> list[tuple[str, str, str]]:
    previous = event.pgh_previous
    if not previous or event.pgh_label.endswith(
        (".created", ".added", ".invited", ".deleted", ".removed", ".revealed", ".revoked")
    ):
        return []
    changes = []
    for model_field in event._meta.concrete_fields:
        name = model_field.name
        if name.startswith("pgh_") or name in NOT_CHANGES or name in ("actor_id", "detail"):
            continue
        column = model_field.attname
        # A console event's `before` is keyed by field name; a row event's by column.
        key = name if isinstance(event, ConsoleEvent) else column
        if key not in previous:
            continue
        before, after = previous[key], _plain(getattr(event, column))
        if isinstance(model_field, models.DecimalField):
            # to_jsonb stores a number (50.0), Django's encoder a string: compare as decimals.
            places = Decimal(1).scaleb(-model_field.decimal_places)
            before = None if before is None else Decimal(str(before)).quantize(places)
            after = getattr(event, column)
        if before != after:
            label = name.replace("_", " ")
            changes.append(
                (
                    label,
                    _shown(before, name=name, users=users),
                    _shown(after, name=name, users=users),
                )
            )
    return changes


def _actor(event, users: dict) -> tuple[str, str]:
    context = event.pgh_context or {}
    if not context:
        return "System", ""  # the worker, a schedule, a shell: no person's request
    name = context.get("name") or users.get(event.actor_id) or "Someone"
    return name, context.get("ip") or ""


def _sentence(event, actor: str, bots: dict, users: dict) -> str:
    label = event.pgh_label
    bot = getattr(event, "bot_id", None)
    bot_name = f"'{bots.get(bot, f'#{bot}')}'" if bot else ""
    name = getattr(event, "name", "")
    verb = label.split(".", 1)[1]
    if label.startswith("bot."):
        return f"{actor} {verb} bot '{name}'"
    if label == "secret.rotated":
        return f"{actor} rotated the secret key of bot '{name}'"
    if label == "secret.revealed":
        return f"{actor} revealed the secret key of bot '{name}'"
    if label == "llm_key.changed":
        return f"{actor} changed the LLM API key of bot '{name}'"
    if label.startswith("rule."):
        return f"{actor} {verb} rule '{name}' of bot {bot_name}"
    if label.startswith("hours."):
        verb = {"created": "set", "changed": "changed", "deleted": "removed"}[verb]
        return f"{actor} {verb} the business hours of bot {bot_name}"
    if label.startswith("holiday."):
        what = f"{event.date:%Y-%m-%d}" + (f" ({name})" if name else "")
        preposition = "from" if verb == "removed" else "of"
        return f"{actor} {verb} holiday {what} {preposition} bot {bot_name}"
    if label == "action.secret_changed":
        return f"{actor} changed the secret header of action '{name}' of bot {bot_name}"
    if label.startswith("action."):
        return f"{actor} {verb} action '{name}' of bot {bot_name}"
    if label.startswith("source."):
        verb = {"resynced": "re-synced"}.get(verb, verb)
        extra = ""
        if label == "source.replaced" and event.candidate_filename:
            extra = f" with {event.candidate_filename}"
        return f"{actor} {verb} knowledge source '{name}' of bot {bot_name}{extra}"
    if isinstance(event, InvitationEvent):
        if label == "invitation.revoked":
            return f"{actor} revoked the invitation of {event.email}"
        again = " again" if label == "member.reinvited" else ""
        return f"{actor} invited {event.email}{again} as {event.role}"
    if isinstance(event, MembershipEvent):
        person = users.get(event.user_id, f"#{event.user_id}")
        if label == "member.added":
            # Signing up (founding the organization or from an invitation) happens before
            # there is anyone signed in to name: no actor, or the person themselves.
            if event.actor_id in (None, event.user_id):
                return f"{person} joined as {event.role}"
            return f"{actor} added {person} as {event.role}"
        if label == "member.role_changed":
            return f"{actor} changed the role of {person}"
        return f"{actor} removed {person} ({event.role})"
    if label == "organization.created":
        return f"The organization {name} was created"
    if label == "webhook.set":
        return f"{actor} set the chat webhook"
    if isinstance(event, ConsoleEvent):
        return _console_sentence(event, actor)
    return f"{actor}: {label}"


def _console_sentence(event: ConsoleEvent, actor: str) -> str:
    conversation = f"conversation #{event.pgh_obj_id}"
    excerpt = event.detail.get("excerpt")
    quoted = f": “{excerpt}”" if excerpt else ""
    verb = event.pgh_label.split(".", 1)[1]
    if verb == "resolve":
        text = f"{actor} resolved {conversation}"
        if event.bot_missed:
            note = f" (“{event.bot_missed_note}”)" if event.bot_missed_note else ""
            text += f", marked “the bot should have handled this”{note}"
        return text
    return {
        "claim": f"{actor} claimed {conversation}",
        "take_over": f"{actor} took over {conversation} from the bot",
        "transfer": f"{actor} transferred {conversation}",
        "return": f"{actor} returned {conversation} to the bot",
        "reply": f"{actor} replied in {conversation}{quoted}",
        "note": f"{actor} added a note to {conversation}{quoted}",
    }[verb]


def entries(events: list, *, organization_id: int) -> list[Entry]:
    """Describe a page of events (of one organization) with two look-ups: its bots and people."""
    bot_ids = {getattr(e, "bot_id", None) for e in events} - {None}
    bots = dict(
        Bot.objects.filter(pk__in=bot_ids, organization_id=organization_id).values_list(
            "pk", "name"
        )
    )
    user_ids = {e.actor_id for e in events}
    user_ids |= {getattr(e, "user_id", None) for e in events}
    user_ids |= {getattr(e, "assigned_agent_id", None) for e in events}
    for event in events:
        if isinstance(event, ConsoleEvent) and event.pgh_previous:
            user_ids.add(event.pgh_previous.get("assigned_agent"))
    users = {user.pk: user.display_name for user in User.objects.filter(pk__in=user_ids - {None})}
    result = []
    for event in events:
        actor, ip = _actor(event, users)
        result.append(
            Entry(
                at=event.pgh_created_at,
                actor=actor,
                ip=ip,
                label=event.pgh_label,
                text=_sentence(event, actor, bots, users),
                changes=_changes(event, users),
            )
        )
    return result
