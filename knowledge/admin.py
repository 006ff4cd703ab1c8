"""Knowledge in Django admin, scoped to the admin's organizations like every tenant admin."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from bots import admin as bots_admin
from bots.admin import TenantAdmin
from bots.models import Bot
from knowledge import services
from knowledge.models import Chunk, Document, IntentModel, KnowledgeSource, TeamAnswer
from knowledge.parsers import MAX_UPLOAD_BYTES, ParseError
from knowledge.switch import bot_embedding_model_set, embedding_model_validate


class KnowledgeSourceForm(forms.ModelForm):
    upload = forms.FileField(
        required=False,
        help_text="For an uploaded file: intent JSON/YAML, FAQ CSV, Markdown, HTML, text, PDF or "
        "JSONL articles. The worker checks a new file first; it replaces this source's "
        "documents once it has passed and synced, and a refused one leaves them serving.",
    )
    # Checked by the service's rules in clean(), not by URLField's (which guesses a scheme).
    url = forms.CharField(
        required=False,
        max_length=1000,
        help_text="For a web page or sitemap: fetched by the worker now, then again every sync "
        "interval. A site that is down is retried with a growing wait.",
    )

    class Meta:
        model = KnowledgeSource
        fields = ["bot", "name", "kind", "url", "sync_interval"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:  # named after the file or the address when left blank
            self.fields["name"].required = False

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if upload is None:
            return None
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size // (1024 * 1024)} MB; the limit is "
                f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
            )
        data = upload.read()
        try:
            # Only the cheap checks: the worker reads the file, within its budget.
            services.upload_check(filename=upload.name, data=data)
        except ParseError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload.name, data

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind") or self.instance.kind
        if kind == KnowledgeSource.Kind.TEAM:
            # Its content is the bot's team answers (knowledge/team.py): nothing to upload or fetch.
            if not self.instance.pk:
                self.add_error("kind", "Answers from the team are saved from the console.")
            for field in ("upload", "url"):
                if cleaned.get(field):
                    self.add_error(field, "Answers from the team are saved from the console.")
            return cleaned
        if kind == KnowledgeSource.Kind.UPLOAD:
            if cleaned.get("url"):
                message = "Uploaded files have no address: choose a web page or a sitemap."
                self.add_error("url", message)
            if not self.instance.pk and not cleaned.get("upload"):
                raise forms.ValidationError("Upload a file.")
            return cleaned
        if cleaned.get("upload"):
            self.add_error("upload", "A web page or sitemap is fetched from its address.")
        if cleaned.get("bot"):
            try:
                cleaned["url"] = services.source_url_validate(
                    bot=cleaned["bot"], url=cleaned.get("url", ""), source=self.instance
                )
            except forms.ValidationError as exc:
                self.add_error("url", exc)
        return cleaned


@admin.register(KnowledgeSource)
class KnowledgeSourceAdmin(TenantAdmin):
    tenant_path = "bot__organization"
    form = KnowledgeSourceForm
    list_display = [
        "name",
        "bot",
        "kind",
        "format",
        "status",
        "document_count",
        "chunk_count",
        "last_synced_at",
        "next_sync_at",
    ]
    list_filter = ["status", "kind", "format"]
    search_fields = ["name", "filename", "url"]
    readonly_fields = [
        "format",
        "filename",
        "status",
        "error",
        "progress_done",
        "progress_total",
        "document_count",
        "chunk_count",
        "last_synced_at",
        "next_sync_at",
        "failure_count",
    ]

    def get_readonly_fields(self, request, obj=None):
        # A source stays what it was created as: an upload has no address to fetch.
        return [*self.readonly_fields, "kind"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data.get("upload")
        if obj.kind != KnowledgeSource.Kind.UPLOAD and (not change or "url" in form.changed_data):
            services.source_add_url(
                bot=obj.bot,
                url=obj.url,
                kind=obj.kind,
                name=obj.name,
                sync_interval=obj.sync_interval,
                source=obj,
            )
        elif upload:
            filename, data = upload
            if not change:
                obj.save()
            services.source_upload(
                bot=obj.bot, filename=filename, data=data, source=obj, name=obj.name
            )
        else:
            super().save_model(request, obj, form, change)


class ReadOnlyTenantAdmin(TenantAdmin):
    """Documents, chunks and intent models are derived from sources: edit the source."""

    tenant_path = "bot__organization"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TeamAnswer)
class TeamAnswerAdmin(ReadOnlyTenantAdmin):
    """Saved from the console and deleted on the bot's knowledge page, whose service syncs the
    team source again; a delete here would leave the bot answering with it."""

    list_display = ["question", "bot", "created_by", "created_at"]
    search_fields = ["question", "answer"]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Document)
class DocumentAdmin(ReadOnlyTenantAdmin):
    list_display = ["title", "kind", "bot", "source", "category", "version", "updated_at"]
    list_filter = ["kind", "category", "language"]
    search_fields = ["title", "external_id", "body"]


@admin.register(Chunk)
class ChunkAdmin(ReadOnlyTenantAdmin):
    list_display = ["document", "position", "kind", "embedding_model"]
    list_filter = ["kind", "embedding_model"]
    search_fields = ["text"]
    exclude = ["embedding"]


@admin.register(IntentModel)
class IntentModelAdmin(ReadOnlyTenantAdmin):
    list_display = ["bot", "embedding_model", "threshold", "created_at"]
    exclude = ["payload"]


# --- The bot's embedding model --------------------------------------------------------------------
class BotAdminForm(forms.ModelForm):
    class Meta:
        model = Bot
        fields = ["embedding_model"]  # the admin adds its fieldsets' fields

    def clean_embedding_model(self):
        return embedding_model_validate(self.cleaned_data["embedding_model"])


class BotAdmin(bots_admin.BotAdmin):
    """bots' Bot admin, with the embedding model checked, and a change of it made by
    re-embedding (knowledge/switch.py) rather than by saving the field."""

    form = BotAdminForm

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        model = obj.embedding_model
        obj.embedding_model = Bot.objects.get(pk=obj.pk).embedding_model
        super().save_model(request, obj, form, change)
        if "embedding_model" in form.changed_data:
            # The worker re-embeds and then switches; the bot answers with its current model
            # until then.
            bot_embedding_model_set(bot=obj, model=model)


admin.site.unregister(Bot)
admin.site.register(Bot, BotAdmin)
