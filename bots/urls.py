from django.urls import path

from bots import views

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
]
