from django.contrib import admin
from django.urls import include, path

from bots.views import signup
from config.views import admin_login, favicon, healthz

admin.site.site_header = "Handoff administration"
admin.site.site_title = "Handoff admin"
admin.site.login = admin_login

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    # Ahead of allauth's own: the same page, aware of a pending invitation.
    path("accounts/signup/", signup, name="account_signup"),
    path("accounts/", include("allauth.urls")),
    path("", include("chat.urls")),
    path("", include("bots.urls")),
    path("", include("knowledge.urls")),
    path("o/<slug:org>/console/", include("escalation.urls")),
    path("o/<slug:org>/analytics/", include("analytics.urls")),
    path("o/<slug:org>/audit/", include("audit.urls")),
    path("o/<slug:org>/", include("escalation.history_urls")),
    # The demo shop's order API that seed_demo's actions call (404 unless settings.DEMO_SHOP).
    path("demo/shop/api/", include("actions.urls")),
]
