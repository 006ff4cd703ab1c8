from django.contrib import admin
from django.urls import include, path

from bots.views import signup
from config.views import healthz

admin.site.site_header = "Handoff administration"
admin.site.site_title = "Handoff admin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Ahead of allauth's own: the same page, aware of a pending invitation.
    path("accounts/signup/", signup, name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("", include("conversations.widget_urls")),
    path("", include("bots.urls")),
    path("o/<slug:org>/console/", include("escalation.urls")),
    path("", include("conversations.urls")),
]
