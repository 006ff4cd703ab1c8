from django.urls import path

from bots import views
from knowledge import views as knowledge_views

urlpatterns = [
    path("", views.home, name="home"),
    path("organizations/new/", views.organization_create, name="organization_create"),
    path("accounts/profile/", views.profile, name="profile"),
    path(
        "accounts/signup/without-invitation/",
        views.signup_without_invitation,
        name="signup_without_invitation",
    ),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
    path("o/<slug:org>/", views.organization_detail, name="organization_detail"),
    path("o/<slug:org>/bots/new/", views.bot_create, name="bot_create"),
    path("o/<slug:org>/bots/<slug:bot>/", views.bot_detail, name="bot_detail"),
    path("o/<slug:org>/members/", views.members, name="members"),
    path("o/<slug:org>/members/invite/", views.invitation_create, name="invitation_create"),
    path(
        "o/<slug:org>/members/<int:member_id>/role/", views.member_set_role, name="member_set_role"
    ),
    path("o/<slug:org>/members/<int:member_id>/remove/", views.member_remove, name="member_remove"),
    path(
        "o/<slug:org>/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/", knowledge_views.knowledge, name="bot_knowledge"
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/upload/",
        knowledge_views.source_upload,
        name="knowledge_upload",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/add-url/",
        knowledge_views.source_add_url,
        name="knowledge_add_url",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/<int:source_id>/replace/",
        knowledge_views.source_replace,
        name="knowledge_replace",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/<int:source_id>/resync/",
        knowledge_views.source_resync,
        name="knowledge_resync",
    ),
    path(
        "o/<slug:org>/bots/<slug:bot>/knowledge/<int:source_id>/delete/",
        knowledge_views.source_delete,
        name="knowledge_delete",
    ),
    path("api/v1/kb/sync_status", knowledge_views.api_sync_status, name="api_kb_sync_status"),
]
