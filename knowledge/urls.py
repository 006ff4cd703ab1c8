"""A bot's knowledge on the site (its sources: upload, add a page, replace, re-sync, delete),
the API's sync status, and the public help pages. Included from config/urls.py at the root,
next to bots' pages."""

from django.urls import path

from knowledge import views

urlpatterns = [
    path("o/<slug:org>/bots/<slug:bot>/knowledge/", views.knowledge, name="bot_knowledge"),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/upload/",
        views.source_upload,
        name="knowledge_upload",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/add-url/",
        views.source_add_url,
        name="knowledge_add_url",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/<int:source_id>/replace/",
        views.source_replace,
        name="knowledge_replace",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/<int:source_id>/resync/",
        views.source_resync,
        name="knowledge_resync",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/<int:source_id>/delete/",
        views.source_delete,
        name="knowledge_delete",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/team/<int:answer_id>/delete/",
        views.team_answer_delete,
        name="knowledge_team_answer_delete",
    ),
    # Public, read-only: the bot's articles and FAQs as a help centre (knowledge/help_pages.py).
    path("help/<slug:org>/<slug:bot>/", views.help_index, name="help_index"),
    path(
        "help/<slug:org>/<slug:bot>/<int:document_id>-<slug:title_slug>/",
        views.help_document,
        name="help_document",
    ),
    path("api/v1/kb/sync_status", views.api_sync_status, name="api_kb_sync_status"),
]
