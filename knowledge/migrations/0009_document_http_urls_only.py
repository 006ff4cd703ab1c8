"""Blank every stored document address that is not an absolute http(s) one (issue 12, finding
5): uploads before the parsers' check kept `javascript:` links that the console rendered.

Chunks have no address of their own (citations read document__url). Messages' citations and
handoff packages are history in JSON: they are sanitised where they are rendered instead.
"""

from django.db import migrations

from config.links import safe_http_url


def blank_unsafe_urls(apps, schema_editor):
    Document = apps.get_model("knowledge", "Document")
    suspects = Document.objects.exclude(url="").exclude(url__regex=r"^https?://[^\s]")
    for pk, url in suspects.values_list("pk", "url").iterator():
        Document.objects.filter(pk=pk).update(url=safe_http_url(url))


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0008_sync_resume")]

    operations = [migrations.RunPython(blank_unsafe_urls, migrations.RunPython.noop)]
