"""The audit log: who changed what, when, from where, before → after.

Row history is django-pghistory's (README, "Audit log", says why this library): Postgres
triggers on the tracked tables copy the changed row into an event table here, whatever made
the change (the product's pages, Django admin, a queryset .update(), a shell), in the same
transaction. Who and from where come from the request (audit.middleware puts them in
pghistory's context, which the triggers copy into every event as JSON).

Hot tables carry no trigger: messages and the bot pipeline's conversation updates are never
tracked. The console's actions are recorded from the action itself (ConsoleEvent, a manual
event: escalation.events.agent_acted), and so is revealing a bot's secret key.

Every event table is append-only in the database (a trigger refuses UPDATE and DELETE), and
fills three columns of its own before each insert (`_guards`): the organization the row
belongs to (kept even after the bot is deleted), the actor's user id (for the person filter),
and the previous event of the same object (`pgh_previous`), which is the "before" of this one.
"""

from __future__ import annotations

import pghistory
import pgtrigger
from django.db import models

from actions.models import Action
from bots.models import Bot, Invitation, Membership, Organization
from conversations.models import Conversation
from escalation.models import WEEKDAYS, BusinessHours, EscalationRule, Holiday
from knowledge.models import KnowledgeSource

# A trigger condition: true when the change came with a person's context (a request), not from
# the worker or a schedule. A source's status goes back to pending by itself too.
BY_A_REQUEST = "NULLIF(CURRENT_SETTING('pghistory.context_metadata', TRUE), '') IS NOT NULL"


def _tracked(tracked, *trackers, fields, name, related_name):
    """pghistory's event model for `tracked`, abstract so that the concrete class below can
    add the audit columns and guards; the context is stored in each event (JSON), so the
    append-only guard covers who and from where too."""
    return pghistory.create_event_model(
        tracked,
        *trackers,
        fields=fields,
        model_name=name,
        app_label="audit",
        obj_field=pghistory.ObjForeignKey(related_name=related_name),
        context_field=pghistory.ContextJSONField(),
        append_only=False,  # the guard is in _guards, with the other triggers on these tables
        abstract=True,
    )


class AuditColumns(models.Model):
    """What every event table adds to pghistory's columns, filled in by _guards."""

    actor_id = models.BigIntegerField(null=True, blank=True, editable=False)
    pgh_previous = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.pgh_label} of #{self.pgh_obj_id} at {self.pgh_created_at:%Y-%m-%d %H:%M}"


def _org_column():
    # Unconstrained: an event outlives the organization, bot or member it tells of.
    return models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        db_constraint=False,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,  # INDEXES below lead with it
    )


def _guards(table: str, *, organization_sql: str | None) -> list:
    """The event table's own triggers: append-only, and before each insert its organization,
    actor and previous event."""
    organization = (
        f"IF NEW.organization_id IS NULL THEN NEW.organization_id := {organization_sql}; END IF;"
        if organization_sql
        else ""
    )
    fill = (
        "NEW.actor_id := COALESCE(NEW.actor_id, NULLIF(NEW.pgh_context->>'user', '')::bigint);"
        f"{organization}"
        "IF NEW.pgh_previous IS NULL THEN "
        f'SELECT to_jsonb(p) INTO NEW.pgh_previous FROM "{table}" p '
        "WHERE p.pgh_obj_id = NEW.pgh_obj_id ORDER BY p.pgh_id DESC LIMIT 1; "
        "END IF; RETURN NEW;"
    )
    return [
        pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        pgtrigger.Trigger(
            name="audit_fill",
            when=pgtrigger.Before,
            operation=pgtrigger.Insert,
            func=fill,
        ),
    ]


BOT_OF = "(SELECT organization_id FROM bots_bot WHERE id = NEW.bot_id)"
# The log's order, newest first, per organization: the page reads each table in it and merges.
INDEXES = [
    models.Index(fields=["organization", "-pgh_created_at", "-pgh_id"], name="%(class)s_org"),
]


# --- The organization: its chat webhook ------------------------------------------------------
class OrganizationEvent(
    _tracked(
        Organization,
        pghistory.InsertEvent("organization.created"),
        pghistory.UpdateEvent("webhook.set", condition=pghistory.AnyChange("webhook_url")),
        fields=["name", "webhook_url"],
        name="OrganizationEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    organization = _org_column()

    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_organizationevent", organization_sql="NEW.pgh_obj_id")


# --- People: members and invitations ---------------------------------------------------------
class MembershipEvent(
    _tracked(
        Membership,
        pghistory.InsertEvent("member.added"),
        pghistory.UpdateEvent("member.role_changed", condition=pghistory.AnyChange("role")),
        pghistory.DeleteEvent("member.removed"),
        fields=["organization", "user", "role"],
        name="MembershipEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_membershipevent", organization_sql=None)


class InvitationEvent(
    _tracked(
        Invitation,
        pghistory.InsertEvent("member.invited"),
        # Inviting an address again renews its open invitation (bots.services.invitation_create).
        pghistory.UpdateEvent(
            "member.reinvited",
            condition=pghistory.Condition(
                "OLD.expires_at IS DISTINCT FROM NEW.expires_at "
                "AND NEW.revoked_at IS NULL AND NEW.accepted_at IS NULL"
            ),
        ),
        pghistory.UpdateEvent(
            "invitation.revoked",
            condition=pghistory.Condition("OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL"),
        ),
        fields=["organization", "email", "name", "role"],
        name="InvitationEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_invitationevent", organization_sql=None)


# --- Bots: settings, and the keys (never stored) ---------------------------------------------
BOT_SETTINGS = [
    "name",
    "slug",
    "greeting",
    "persona",
    "colour",
    "allowed_origins",
    "embedding_model",
    "widget_position",
    "llm_base_url",
    "llm_model",
    "response_minutes",
    "forbidden_phrases",
    "help_pages",
    "ask_if_answered",
    "not_answered",
    "reopen_hours",
    "inactivity_minutes",
    "action_calls_per_turn",
]


class BotEvent(
    _tracked(
        Bot,
        pghistory.InsertEvent("bot.created"),
        # Only what a person sets: the knowledge's own writes to the bot row (calibration, the
        # active model, the adapter) are not changes anyone made.
        pghistory.UpdateEvent("bot.changed", condition=pghistory.AnyChange(*BOT_SETTINGS)),
        pghistory.DeleteEvent("bot.deleted"),
        fields=["organization", *BOT_SETTINGS],
        name="BotEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_botevent", organization_sql=None)


class BotKeyEvent(
    _tracked(
        Bot,
        # That a key changed or was shown, never the key: the audit log is read by every
        # manager, and a key in it would outlive its rotation.
        pghistory.UpdateEvent("secret.rotated", condition=pghistory.AnyChange("secret_key")),
        pghistory.UpdateEvent("llm_key.changed", condition=pghistory.AnyChange("llm_api_key")),
        pghistory.ManualEvent("secret.revealed"),
        fields=["organization", "name"],
        name="BotKeyEventBase",
        related_name="audit_key_events",
    ),
    AuditColumns,
):
    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_botkeyevent", organization_sql=None)


# --- Escalation: rules, business hours, holidays ---------------------------------------------
RULE_FIELDS = [
    "bot",
    "position",
    "name",
    "enabled",
    "trigger",
    "phrases",
    "level",
    "threshold",
    "categories",
    "message_count",
    "window_hours",
    "mode",
    "priority",
    "queue",
]


class EscalationRuleEvent(
    _tracked(
        EscalationRule,
        pghistory.InsertEvent("rule.created"),
        pghistory.UpdateEvent("rule.changed", condition=pghistory.AnyChange(*RULE_FIELDS)),
        pghistory.DeleteEvent("rule.deleted"),
        fields=RULE_FIELDS,
        name="EscalationRuleEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    organization = _org_column()

    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_escalationruleevent", organization_sql=BOT_OF)


HOURS_FIELDS = ["bot", "enabled", "timezone", *WEEKDAYS]


class BusinessHoursEvent(
    _tracked(
        BusinessHours,
        pghistory.InsertEvent("hours.created"),
        pghistory.UpdateEvent("hours.changed", condition=pghistory.AnyChange(*HOURS_FIELDS)),
        pghistory.DeleteEvent("hours.deleted"),
        fields=HOURS_FIELDS,
        name="BusinessHoursEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    organization = _org_column()

    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_businesshoursevent", organization_sql=BOT_OF)


class HolidayEvent(
    _tracked(
        Holiday,
        pghistory.InsertEvent("holiday.added"),
        pghistory.UpdateEvent("holiday.changed", condition=pghistory.AnyChange("date", "name")),
        pghistory.DeleteEvent("holiday.removed"),
        fields=["bot", "date", "name"],
        name="HolidayEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    organization = _org_column()

    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_holidayevent", organization_sql=BOT_OF)


# --- Knowledge sources -----------------------------------------------------------------------
class KnowledgeSourceEvent(
    _tracked(
        KnowledgeSource,
        pghistory.InsertEvent("source.added"),
        # A new file waiting to be read, or the source pointed at another address. The worker's
        # own writes (progress, status, promoting the file it read) are not changes by a person.
        pghistory.UpdateEvent(
            "source.replaced",
            condition=pghistory.Condition(
                "((OLD.candidate_checksum IS DISTINCT FROM NEW.candidate_checksum "
                "AND NEW.candidate_checksum <> '') OR OLD.url IS DISTINCT FROM NEW.url)"
            ),
        ),
        pghistory.UpdateEvent(
            "source.resynced",
            condition=pghistory.Condition(
                "(OLD.status <> 'pending' AND NEW.status = 'pending' "
                "AND OLD.candidate_checksum IS NOT DISTINCT FROM NEW.candidate_checksum "
                f"AND OLD.url IS NOT DISTINCT FROM NEW.url AND {BY_A_REQUEST})"
            ),
        ),
        pghistory.DeleteEvent("source.removed"),
        fields=["bot", "name", "kind", "url", "filename", "candidate_filename"],
        name="KnowledgeSourceEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    organization = _org_column()

    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_knowledgesourceevent", organization_sql=BOT_OF)


# --- Actions: what a bot may call at the business, and its controls --------------------------
# Every field an admin sets except the secret header's value: that it changed is recorded
# (action.secret_changed), never the value, like the bot's keys.
ACTION_FIELDS = [
    "bot",
    "name",
    "enabled",
    "description",
    "input_schema",
    "intent",
    "method",
    "url_template",
    "secret_header_name",
    "timeout_seconds",
    "audience",
    "requires_confirmation",
    "confirmation_template",
    "limit_argument",
    "limit_max",
    "result_template",
    "progress_text",
]


class ActionEvent(
    _tracked(
        Action,
        pghistory.InsertEvent("action.created"),
        pghistory.UpdateEvent("action.changed", condition=pghistory.AnyChange(*ACTION_FIELDS)),
        pghistory.UpdateEvent(
            "action.secret_changed", condition=pghistory.AnyChange("secret_header_value")
        ),
        pghistory.DeleteEvent("action.deleted"),
        fields=ACTION_FIELDS,
        name="ActionEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    organization = _org_column()

    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_actionevent", organization_sql=BOT_OF)


# --- The console: agents' actions (manual events, no trigger on conversations) ----------------
CONSOLE_ACTIONS = {
    "conversation_claim": "console.claim",
    "conversation_take_over": "console.take_over",
    "conversation_transfer": "console.transfer",
    "conversation_resolve": "console.resolve",
    "conversation_return_to_bot": "console.return",
    "conversation_reply": "console.reply",
    "message_add_note": "console.note",
}
CONSOLE_FIELDS = [
    "bot",
    "status",
    "assigned_agent",
    "queue",
    "priority",
    "resolution",
    "bot_missed",
    "bot_missed_note",
]


class ConsoleEvent(
    _tracked(
        Conversation,
        *(pghistory.ManualEvent(label) for label in CONSOLE_ACTIONS.values()),
        fields=CONSOLE_FIELDS,
        name="ConsoleEventBase",
        related_name="audit_events",
    ),
    AuditColumns,
):
    """The conversation as the action left it; `pgh_previous` holds it as the action found it
    (written by audit.services.console_event_record, not looked up), and `detail` what the
    action carried (the message written, the transfer's target)."""

    organization = _org_column()
    detail = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        indexes = INDEXES
        triggers = _guards("audit_consoleevent", organization_sql=BOT_OF)


EVENT_MODELS = [
    OrganizationEvent,
    MembershipEvent,
    InvitationEvent,
    BotEvent,
    BotKeyEvent,
    EscalationRuleEvent,
    BusinessHoursEvent,
    HolidayEvent,
    KnowledgeSourceEvent,
    ActionEvent,
    ConsoleEvent,
]
