from django.contrib import admin
from django.urls import include, path

from config.views import admin_login, favicon, healthz

admin.site.site_header = "Handoff administration"
admin.site.site_title = "Handoff admin"
admin.site.login = admin_login

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("conversations.widget_urls")),
    path("", include("bots.urls")),
    path("o/<slug:org>/console/", include("escalation.urls")),
    path("", include("conversations.urls")),
]
