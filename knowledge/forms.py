"""The knowledge page's form for web sources (uploads are a single file field, read directly)."""

from __future__ import annotations

from django import forms

from knowledge import web
from knowledge.models import KnowledgeSource


class WebSourceForm(forms.Form):
    url = forms.CharField(
        label="Address",
        required=False,  # url_clean says what is missing, in its own words
        widget=forms.URLInput(attrs={"placeholder": "https://help.example.com/shipping"}),
    )
    kind = forms.ChoiceField(
        label="What it is",
        choices=[
            (KnowledgeSource.Kind.URL, "A web page"),
            (KnowledgeSource.Kind.SITEMAP, "A sitemap: every page it lists"),
        ],
        initial=KnowledgeSource.Kind.URL,
    )
    sync_interval = forms.ChoiceField(
        label="Re-sync",
        choices=[(key, label) for key, (label, _interval) in web.SYNC_INTERVALS.items()],
        initial="daily",
    )

    def clean_url(self) -> str:
        return web.url_clean(self.cleaned_data["url"])

    def clean_sync_interval(self):
        return web.SYNC_INTERVALS[self.cleaned_data["sync_interval"]][1]

    def error_text(self) -> str:
        """Every error on one line, each named by its field's label."""
        return " ".join(
            f"{self[field].label}: {' '.join(errors)}" if field in self.fields else " ".join(errors)
            for field, errors in self.errors.items()
        )
