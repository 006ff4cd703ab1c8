"""Knowledge in Django admin, scoped to the admin's organizations like every tenant admin."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from bots.admin import TenantAdmin
from knowledge import services
from knowledge.models import Chunk, Document, IntentModel, KnowledgeSource
from knowledge.parsers import MAX_UPLOAD_BYTES, ParseError, detect_format, parse_upload


class KnowledgeSourceForm(forms.ModelForm):
    # Web page and sitemap sources (fetched by the worker) are not built yet: files only.
    upload = forms.FileField(
        required=False,
        help_text="Intent JSON/YAML, FAQ CSV, Markdown, HTML, text, PDF or JSONL articles. "
        "A new file replaces this source's documents once it has synced.",
    )

    class Meta:
        model = KnowledgeSource
        fields = ["bot", "name"]

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
            parse_upload(filename=upload.name, data=data, format=detect_format(upload.name, data))
        except ParseError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload.name, data

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("upload"):
            raise forms.ValidationError("Upload a file.")
        return cleaned


@admin.register(KnowledgeSource)
class KnowledgeSourceAdmin(TenantAdmin):
    tenant_path = "bot__organization"
    form = KnowledgeSourceForm
    list_display = [
        "name",
        "bot",
        "format",
        "status",
        "document_count",
        "chunk_count",
        "last_synced_at",
    ]
    list_filter = ["status", "format"]
    search_fields = ["name", "filename"]
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
    ]

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data.get("upload")
        if upload:
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
