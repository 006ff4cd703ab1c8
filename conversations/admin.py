"""Conversations in Django admin, scoped to the admin's organizations like every tenant admin.

Read-mostly: conversations and messages are written by the chat (conversations/services.py,
which owns the state machine and the live events), so admin only changes a conversation's
priority, through the service, and deletes rows (a customer's erasure request).
"""

from __future__ import annotations

from django.contrib import admin

from bots.admin import TenantAdmin
from conversations import services
from conversations.models import ActionCall, Conversation, Customer, Message


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "sender", "agent", "text", "state", "outcome", "confidence", "feedback"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("agent")

    def has_view_permission(self, request, obj=None):
        # Django's own inline check asks for model permissions, which tenant admins do not
        # hold; the conversation page this is shown on was already allowed by TenantAdmin.
        return True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ActionCallInline(MessageInline):
    """The bot's action calls in the conversation: what it asked, ran and how it went (the
    record holds no URL or secret)."""

    model = ActionCall
    fields = ["created_at", "name", "arguments", "state", "outcome", "confirmation", "record"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super(MessageInline, self).get_queryset(request)


@admin.register(Conversation)
class ConversationAdmin(TenantAdmin):
    tenant_path = "bot__organization"
    list_display = [
        "__str__",
        "bot",
        "status",
        "resolution",
        "priority",
        "assigned_agent",
        "last_message_at",
    ]
    # Only bots that appear in the (tenant-scoped) list: a plain bot filter would list every
    # organization's bots.
    list_filter = ["status", "resolution", "priority", ("bot", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["bot", "customer", "assigned_agent"]
    search_fields = ["customer__name", "customer__email", "customer__external_id"]
    date_hierarchy = "created_at"
    fields = [
        "bot",
        "customer",
        "channel",
        "status",
        "priority",
        "assigned_agent",
        "handoff_reason",
        "handoff_at",
        "sentiment",
        "resolution",
        "reopened_count",
        "csat",
        "csat_comment",
        "csat_at",
        "summary",
        "created_at",
        "last_message_at",
        "resolved_at",
    ]
    readonly_fields = [field for field in fields if field != "priority"]
    inlines = [MessageInline, ActionCallInline]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        if "priority" in form.changed_data:
            services.conversation_set_priority(conversation=obj, priority=obj.priority)


@admin.register(Customer)
class CustomerAdmin(TenantAdmin):
    tenant_path = "bot__organization"
    list_display = ["__str__", "bot", "email", "external_id", "last_seen_at"]
    list_filter = [("bot", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "email", "external_id", "visitor_id"]
    readonly_fields = [
        "bot",
        "name",
        "email",
        "external_id",
        "visitor_id",
        "attributes",
        "created_at",
        "last_seen_at",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
