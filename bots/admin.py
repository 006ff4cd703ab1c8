"""Django admin, scoped per tenant.

Owners and admins of an organization configure it here (bots now; knowledge and escalation
rules as they land), so the admin is a tenant-facing surface and gets the same isolation as
every other view: a non-superuser sees, edits and picks only rows of organizations they manage.
Superusers (the engineer who self-hosts) see everything.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.db import models

from bots.events import bot_created
from bots.models import MANAGER_ROLES, Bot, Invitation, Membership, Organization, Role, User
from bots.selectors import organization_ids_with_role
from bots.services import (
    membership_check_owner_kept,
    membership_remove,
    membership_set_role,
    user_delete,
    user_set_active,
)


class TenantAdmin(admin.ModelAdmin):
    """Base for every admin of tenant data.

    `tenant_path` is the lookup from the model to its Organization ("organization",
    "bot__organization", or "" for Organization itself). `roles` may use the admin.
    """

    tenant_path = "organization"
    roles: tuple[str, ...] = tuple(MANAGER_ROLES)

    def _org_ids(self, request) -> list[int]:
        # Asked several times per admin page (module list, permissions, queryset): once per request.
        cache = "_handoff_org_ids_" + ",".join(self.roles)
        if not hasattr(request, cache):
            setattr(request, cache, organization_ids_with_role(user=request.user, roles=self.roles))
        return getattr(request, cache)

    def _org_lookup(self) -> str:
        return f"{self.tenant_path}__in" if self.tenant_path else "pk__in"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(**{self._org_lookup(): self._org_ids(request)})

    def _allowed(self, request, obj=None) -> bool:
        if request.user.is_superuser:
            return True
        if not request.user.is_active or not self._org_ids(request):
            return False
        if obj is None:
            return True
        return (
            type(obj)
            ._default_manager.filter(pk=obj.pk, **{self._org_lookup(): self._org_ids(request)})
            .exists()
        )

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def has_add_permission(self, request):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            ids = self._org_ids(request)
            model = db_field.related_model
            if model is Organization:
                kwargs["queryset"] = Organization.objects.filter(pk__in=ids)
            elif model is Bot:
                kwargs["queryset"] = Bot.objects.filter(organization_id__in=ids)
            elif model is User:
                kwargs["queryset"] = User.objects.filter(
                    memberships__organization_id__in=ids
                ).distinct()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Organization)
class OrganizationAdmin(TenantAdmin):
    tenant_path = ""
    roles = (Role.OWNER,)
    list_display = ["name", "slug", "webhook_url", "created_at"]
    # A webhook pasted without its scheme is https (Django 6's default; silences 5.2's warning).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    # escalation/admin.py adds its test of the chat webhook.

    def has_add_permission(self, request):
        # New organizations come from sign-up (or the home page), which makes the owner.
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


class MembershipAdminForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["role"]  # the admin adds the others

    def clean_role(self):
        role = self.cleaned_data["role"]
        if self.instance.pk:
            try:
                membership_check_owner_kept(membership=self.instance, role=role)
            except ValidationError as exc:
                raise ValidationError(exc.messages) from exc
        return role


@admin.register(Membership)
class MembershipAdmin(TenantAdmin):
    """Removals and role changes go through the services, which close the person's open
    sockets (chat.consumers.members.MemberSocket)."""

    form = MembershipAdminForm
    fields = ["user", "organization", "role", "availability", "capacity", "queues", "last_seen_at"]
    roles = (Role.OWNER,)
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__name"]

    def has_add_permission(self, request):
        # People join through invitations, so they choose their own password.
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        # Moving a membership to another person or organization would be a removal without
        # its event: remove it and invite instead.
        fields = super().get_readonly_fields(request, obj)
        return [*fields, "user", "organization"] if obj else fields

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.role == Role.OWNER:
            try:
                membership_check_owner_kept(membership=obj)
            except ValidationError:
                return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        role = obj.role
        if change and "role" in form.changed_data:
            obj.role = form.initial["role"]
        super().save_model(request, obj, form, change)
        if obj.role != role:
            membership_set_role(membership=obj, role=role)
            obj.role = role

    def delete_model(self, request, obj):
        membership_remove(membership=obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            try:
                membership_remove(membership=membership)
            except ValidationError as exc:
                self.message_user(request, f"{membership}: {exc.messages[0]}", messages.ERROR)


@admin.register(Invitation)
class InvitationAdmin(TenantAdmin):
    roles = (Role.OWNER,)
    list_display = ["email", "organization", "role", "created_at", "expires_at", "accepted_at"]
    list_filter = ["role"]
    search_fields = ["email"]
    readonly_fields = ["token", "accepted_at", "accepted_by", "created_at"]


@admin.register(Bot)
class BotAdmin(TenantAdmin):
    """knowledge/admin.py extends it: the embedding model's check and switch."""

    list_display = ["name", "organization", "public_key", "updated_at"]
    search_fields = ["name", "slug", "public_key"]
    readonly_fields = [
        "public_key",
        "secret_key",
        "embedding_model_active",
        "embedding_adapter",
        "embedding_error",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["organization", "name", "slug"]}),
        ("Widget", {"fields": ["greeting", "persona", "colour", "allowed_origins"]}),
        (
            "Knowledge",
            {
                "fields": [
                    "embedding_model",
                    "embedding_model_active",
                    "embedding_adapter",
                    "embedding_error",
                ]
            },
        ),
        (
            "How conversations end",
            {
                "fields": [
                    "help_pages",
                    "ask_if_answered",
                    "not_answered",
                    "inactivity_minutes",
                    "reopen_hours",
                ],
                "description": "Who resolved a conversation, and when it is closed: "
                "README, “How a conversation ends”.",
            },
        ),
        (
            "Actions",
            {
                "fields": ["action_calls_per_turn"],
                "description": "The bot's calls to your systems are configured under Actions.",
            },
        ),
        ("Keys", {"fields": ["public_key", "secret_key"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]
    prepopulated_fields = {"slug": ["name"]}

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "action_calls_per_turn":
            # A form posted without it (a script, a form saved before the field existed) keeps
            # the bot's value: Django leaves a defaulted field alone when it is not posted.
            kwargs["required"] = False
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        obj.embedding_model_active = obj.embedding_model  # nothing to re-embed yet
        # Like bots made on the site (services.bot_create): in one transaction (the admin's),
        # the floors above add what a new bot starts with (escalation: the default rules).
        super().save_model(request, obj, form, change)
        bot_created.send(sender=Bot, bot=obj)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Only superusers manage accounts (Django's own permission checks apply)."""

    list_display = ["email", "shown_name", "is_staff", "is_superuser", "last_login"]
    search_fields = ["email", "name", "first_name", "last_name"]
    ordering = ["email"]
    # The name customers and teammates read (User.display_name) sits with the login.
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        ("Personal info", {"fields": ["name", "email", "first_name", "last_name"]}),
        *BaseUserAdmin.fieldsets[2:],
    ]

    @admin.display(description="Name", ordering="name")
    def shown_name(self, user: User) -> str:
        return user.display_name

    def save_model(self, request, obj, form, change):
        # Deactivating goes through the service, which closes the person's open sockets.
        is_active = obj.is_active
        if change and "is_active" in form.changed_data:
            obj.is_active = form.initial["is_active"]
        super().save_model(request, obj, form, change)
        if obj.is_active != is_active:
            user_set_active(user=obj, is_active=is_active)

    def delete_model(self, request, obj):
        user_delete(user=obj)

    def delete_queryset(self, request, queryset):
        for user in queryset:
            user_delete(user=user)
