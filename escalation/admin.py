"""Escalation in Django admin: each bot's rules (ordered, with a page to test a sample message
against them), the log of handoffs (read-only), business hours with their holidays, the
notifications sent to agents (with their failures), and the organization's test of its chat
webhook (an action added to bots' Organization admin).

All of it is tenant data (bots.admin.TenantAdmin): an organization's owners and admins see and
change only their own bots' rules, logs and hours.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import ngettext

from bots import admin as bots_admin
from bots.admin import TenantAdmin
from bots.models import MANAGER_ROLES, Bot, Organization
from bots.selectors import organization_ids_with_role
from conversations.assessment import assess_text
from escalation import rules
from escalation.models import (
    CATEGORIES,
    SUBTYPES,
    WEEKDAYS,
    BusinessHours,
    EscalationLog,
    EscalationRule,
    Holiday,
    Notification,
)
from escalation.notifications import notification_test_webhook, notifications_retry


@admin.register(EscalationRule)
class EscalationRuleAdmin(TenantAdmin):
    tenant_path = "bot__organization"
    list_display = ["name", "bot", "position", "enabled", "trigger", "mode", "priority", "queue"]
    list_display_links = ["name"]
    list_editable = ["position", "enabled"]
    list_filter = [("bot", admin.RelatedOnlyFieldListFilter), "trigger", "mode", "enabled", "queue"]
    search_fields = ["name", "phrases"]
    ordering = ["bot", "position", "id"]
    change_list_template = "admin/escalation/escalationrule/change_list.html"
    fieldsets = [
        (None, {"fields": ["bot", "name", "enabled", "position"]}),
        (
            "When",
            {
                "fields": [
                    "trigger",
                    "phrases",
                    "level",
                    "threshold",
                    "categories",
                    "message_count",
                    "window_hours",
                ],
                "description": "Each trigger reads its own parameter: phrases (asks for a "
                "person, keywords), level (sentiment), threshold (frustration, confidence), "
                "categories, message count (unresolved), window hours (returning).",
            },
        ),
        ("Then", {"fields": ["mode", "priority", "queue"]}),
    ]

    def get_urls(self):
        return [
            path(
                "test/",
                self.admin_site.admin_view(self.test_view),
                name="escalation_escalationrule_test",
            ),
            *super().get_urls(),
        ]

    def test_view(self, request):
        """Try a sample message against a bot's rules: each rule, whether it fires and why,
        and which one wins. Only the user's own organizations' bots can be picked."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = RuleTestForm(request.GET or None, bots=self._bots(request))
        result = None
        if form.is_valid():
            result = _test_result(form.cleaned_data)
        context = {
            **self.admin_site.each_context(request),
            "title": "Test a message against the escalation rules",
            "opts": self.model._meta,
            "form": form,
            "result": result,
        }
        template = "admin/escalation/escalationrule/test_message.html"
        return TemplateResponse(request, template, context)

    def _bots(self, request):
        bots = Bot.objects.select_related("organization").order_by("organization__name", "name")
        if request.user.is_superuser:
            return bots
        return bots.filter(organization_id__in=self._org_ids(request))


class RuleTestForm(forms.Form):
    bot = forms.ModelChoiceField(queryset=Bot.objects.none())
    text = forms.CharField(
        label="Customer message", widget=forms.Textarea(attrs={"rows": 3, "cols": 80})
    )
    confidence = forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        help_text="The bot's answer confidence, 0–1 (for low-confidence rules).",
    )
    category = forms.ChoiceField(
        required=False,
        choices=[("", "—"), ("human", "asks for a person"), *[(c, c) for c in CATEGORIES]],
        help_text="What the classifier called the message (for category rules).",
    )
    customer_messages = forms.IntegerField(
        required=False,
        min_value=1,
        initial=1,
        help_text="Customer messages so far, this one included.",
    )
    returning_after_hours = forms.FloatField(
        required=False,
        min_value=0,
        help_text="Hours since the customer's previous conversation (for returning rules).",
    )
    ai_error = forms.BooleanField(required=False, label="The bot failed to answer")

    def __init__(self, *args, bots, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["bot"].queryset = bots


def _test_result(data: dict) -> dict:
    assessment = assess_text(data["text"])
    category = data["category"] or ""
    high_stakes = category in SUBTYPES
    facts = rules.Facts(
        text=data["text"],
        level=assessment.level,
        frustration=assessment.frustration,
        customer_messages=data["customer_messages"] or 1,
        returning_after_hours=data["returning_after_hours"],
        confidence=data["confidence"],
        category="high_stakes" if high_stakes else category,
        subtype=category if high_stakes else "",
        asked_for_person=category == "human",
        error="The bot failed (test)" if data["ai_error"] else "",
    )
    checks, winner = rules.explain(rules=rules.rule_list(data["bot"]), facts=facts)
    return {"assessment": assessment, "checks": checks, "winner": winner}


@admin.register(EscalationLog)
class EscalationLogAdmin(TenantAdmin):
    """What happened, as it happened: nobody edits the history."""

    tenant_path = "conversation__bot__organization"
    list_display = [
        "conversation",
        "trigger",
        "rule",
        "manual",
        "priority",
        "queue",
        "triggered_at",
        "first_response_at",
        "resolved_at",
    ]
    list_filter = ["trigger", "manual", "priority", "queue"]
    list_select_related = ["conversation__customer", "rule"]
    readonly_fields = [
        "conversation",
        "rule",
        "message",
        "trigger",
        "reason",
        "manual",
        "priority",
        "queue",
        "package_display",
        "triggered_at",
        "first_response_at",
        "resolved_at",
    ]
    exclude = ["package"]

    @admin.display(description="Handoff package")
    def package_display(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.package, indent=2, ensure_ascii=False))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class HolidayInline(admin.TabularInline):
    """A bot's holidays on its business hours' page. Holidays belong to the bot (they close
    it whether or not hours are set), so the inline is built on Bot and given the hours'
    bot (BusinessHoursAdmin.get_formset_kwargs)."""

    model = Holiday
    extra = 1
    fields = ["date", "name"]

    def __init__(self, parent_model, admin_site):
        super().__init__(Bot, admin_site)

    # The page's own tenant check (TenantAdmin) already decided who sees these hours.
    def _allowed(self, request) -> bool:
        if request.user.is_superuser:
            return True
        return bool(organization_ids_with_role(user=request.user, roles=MANAGER_ROLES))

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, obj=None):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)


@admin.register(BusinessHours)
class BusinessHoursAdmin(TenantAdmin):
    tenant_path = "bot__organization"
    list_display = ["bot", "enabled", "timezone", "monday", "saturday", "sunday"]
    list_filter = ["enabled"]
    inlines = [HolidayInline]
    fields = ["bot", "enabled", "timezone", *WEEKDAYS]

    def get_readonly_fields(self, request, obj=None):
        # The holidays below are the bot's: moving the hours to another bot would not move them.
        return ["bot"] if obj is not None else []

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if isinstance(inline, HolidayInline):
            kwargs["instance"] = obj.bot if obj is not None and obj.bot_id else Bot()
        return kwargs

    def save_formset(self, request, form, formset, change):
        if formset.model is Holiday:
            formset.instance = form.instance.bot
        super().save_formset(request, form, formset, change)


# --- Notifications: what agents were sent, and why a send failed ----------------------------------
@admin.register(Notification)
class NotificationAdmin(TenantAdmin):
    list_display = [
        "created_at",
        "kind",
        "short_target",
        "conversation",
        "state",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["state", "kind"]
    search_fields = ["target", "subject", "last_error"]
    list_select_related = ["conversation__customer"]
    actions = ["retry_now"]
    # A record of what was sent: written by the worker, never typed in.
    readonly_fields = [
        "organization",
        "conversation",
        "kind",
        "target",
        "subject",
        "body",
        "state",
        "attempts",
        "last_error",
        "next_attempt_at",
        "created_at",
        "sent_at",
    ]

    def has_add_permission(self, request):
        return False

    @admin.display(description="to")
    def short_target(self, obj: Notification) -> str:
        return obj.target if len(obj.target) <= 60 else obj.target[:57] + "…"

    @admin.action(description="Retry now")
    def retry_now(self, request, queryset):
        count = notifications_retry(ids=list(queryset.values_list("pk", flat=True)))
        skipped = queryset.count() - count
        self.message_user(
            request,
            ngettext(
                "%(count)d notification queued to be sent again.",
                "%(count)d notifications queued to be sent again.",
                count,
            )
            % {"count": count}
            + (f" {skipped} already sent or being sent were left alone." if skipped else ""),
            messages.SUCCESS if count else messages.WARNING,
        )


# --- The organization's chat webhook --------------------------------------------------------------
class OrganizationAdmin(bots_admin.OrganizationAdmin):
    actions = [*bots_admin.OrganizationAdmin.actions, "send_test_message"]

    @admin.action(description="Send a test message to the chat webhook")
    def send_test_message(self, request, queryset):
        sent, missing = [], []
        for organization in queryset:
            if organization.webhook_url:
                notification_test_webhook(organization=organization)
                sent.append(organization.name)
            else:
                missing.append(organization.name)
        if sent:
            self.message_user(
                request,
                f"Test message queued for {', '.join(sent)}: its outcome shows under "
                "Escalation › Notifications.",
                messages.SUCCESS,
            )
        if missing:
            self.message_user(
                request, f"No chat webhook set for {', '.join(missing)}.", messages.WARNING
            )


admin.site.unregister(Organization)
admin.site.register(Organization, OrganizationAdmin)
