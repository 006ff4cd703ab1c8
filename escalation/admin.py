"""Escalation in Django admin, scoped per tenant (bots.admin.TenantAdmin)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import ngettext

from bots.admin import TenantAdmin
from escalation.models import Notification
from escalation.notifications import notifications_retry


# --- Notifications: what agents were sent, and why a send failed ------------------------------
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
