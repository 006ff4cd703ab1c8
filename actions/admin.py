"""Actions in Django admin: each bot's actions, with the secret header write-only (like the bot's
keys: typed, never shown back) and a "Test this action" page that runs the action for real with
arguments and a customer id the admin types, showing the outcome and the trace's record.

Tenant data (bots.admin.TenantAdmin): an organization's owners and admins see, change and test
only their own bots' actions; another organization's action is a 404.
"""

from __future__ import annotations

import json
import uuid

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from actions.models import Action
from actions.services import action_run
from bots.admin import TenantAdmin


class ActionAdminForm(forms.ModelForm):
    # Write-only: the field is always empty on the page; left empty, the stored value stays.
    secret_header_value = forms.CharField(
        label="Secret header value",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Sent in the secret header on every call; never shown again. Leave empty to "
        "keep the current value.",
    )
    clear_secret = forms.BooleanField(
        label="Remove the secret header value", required=False, initial=False
    )

    class Meta:
        model = Action
        fields = [
            "bot",
            "name",
            "enabled",
            "description",
            "input_schema",
            "intent",
            "method",
            "url_template",
            "secret_header_name",
            "secret_header_value",
            "timeout_seconds",
            "audience",
            "requires_confirmation",
            "confirmation_template",
            "limit_argument",
            "limit_max",
            "result_template",
            "progress_text",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._stored_secret = self.instance.secret_header_value if self.instance.pk else ""
        self.initial["secret_header_value"] = ""

    def clean(self):
        data = super().clean()
        typed = data.get("secret_header_value") or ""
        if data.get("clear_secret"):
            self.instance.secret_header_value = ""
        elif typed:
            self.instance.secret_header_value = typed
        else:
            self.instance.secret_header_value = self._stored_secret
        data["secret_header_value"] = self.instance.secret_header_value
        return data


@admin.register(Action)
class ActionAdmin(TenantAdmin):
    tenant_path = "bot__organization"
    form = ActionAdminForm
    list_display = ["name", "bot", "method", "audience", "requires_confirmation", "enabled"]
    list_filter = [("bot", admin.RelatedOnlyFieldListFilter), "audience", "enabled"]
    list_select_related = ["bot"]
    search_fields = ["name", "description"]
    readonly_fields = ["secret_status", "created_at", "updated_at"]
    change_form_template = "admin/actions/action/change_form.html"
    fieldsets = [
        (None, {"fields": ["bot", "name", "enabled", "description", "input_schema", "intent"]}),
        (
            "The endpoint",
            {
                "fields": [
                    "method",
                    "url_template",
                    "secret_header_name",
                    "secret_status",
                    "secret_header_value",
                    "clear_secret",
                    "timeout_seconds",
                ],
                "description": "Every call is signed with the bot's secret key: "
                "X-Handoff-User-Id, X-Handoff-Timestamp and X-Handoff-Signature (README, "
                "“Actions: what an admin configures”). Addresses on private networks are "
                "refused unless ACTIONS_ALLOW_PRIVATE_NETWORKS is set.",
            },
        ),
        (
            "Controls",
            {
                "fields": [
                    "audience",
                    "requires_confirmation",
                    "confirmation_template",
                    "limit_argument",
                    "limit_max",
                ]
            },
        ),
        ("What the customer reads", {"fields": ["result_template", "progress_text"]}),
        ("History", {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="Secret header value")
    def secret_status(self, obj: Action) -> str:
        return "Set (hidden)" if obj and obj.secret_header_value else "Not set"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/test/",
                self.admin_site.admin_view(self.test_view),
                name="actions_action_test",
            ),
            *super().get_urls(),
        ]

    def test_view(self, request, object_id):
        """Run the action with the admin's arguments and customer id, for real (a refund is a
        refund), and show the outcome: what the customer would read and the trace's record."""
        action = self.get_object(request, object_id)  # scoped to the admin's organizations
        if action is None:
            raise Http404("No such action.")
        if not self.has_change_permission(request, action):
            raise PermissionDenied
        form = ActionTestForm(request.POST or None, action=action)
        result = None
        key = ""
        if request.method == "POST" and form.is_valid():
            # A fresh key for every press: each is a new request (two presses, two refunds),
            # and the endpoint is tested with the signature format a conversation's calls use,
            # which always carry a key (actions.signing).
            key = f"test-{uuid.uuid4().hex}"
            result = action_run(
                action=action,
                arguments=form.cleaned_data["arguments"],
                user_id=form.cleaned_data["user_id"] or None,
                confirmed=form.cleaned_data["confirmed"],
                idempotency_key=key,
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Test {action.name}",
            "opts": self.model._meta,
            "original": action,
            "form": form,
            "result": result,
            "idempotency_key": key,
            "record": json.dumps(result.record(), indent=2, ensure_ascii=False) if result else "",
        }
        return TemplateResponse(request, "admin/actions/action/test.html", context)

    def view_on_site(self, obj):  # the admin's "view on site" makes no sense here
        return None

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        if obj is not None:
            context["test_url"] = reverse("admin:actions_action_test", args=[obj.pk])
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)


class ActionTestForm(forms.Form):
    arguments = forms.CharField(
        label="Arguments (JSON)",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
        initial="{}",
        help_text='As the model would send them, e.g. {"order_id": "1234"}.',
    )
    user_id = forms.CharField(
        label="Customer id",
        required=False,
        max_length=200,
        help_text="The verified customer's id, sent signed to the endpoint. Empty: an "
        "anonymous customer.",
    )
    confirmed = forms.BooleanField(
        label="The customer confirmed",
        required=False,
        help_text="Without it, an action that needs confirmation shows its card's text and "
        "calls nothing.",
    )

    def __init__(self, *args, action: Action, **kwargs):
        super().__init__(*args, **kwargs)
        example = {name: "" for name in action.input_schema.get("required") or []}
        self.fields["arguments"].initial = json.dumps(example)

    def clean_arguments(self):
        try:
            value = json.loads(self.cleaned_data["arguments"])
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError('Write a JSON object, e.g. {"order_id": "1234"}.')
        return value
