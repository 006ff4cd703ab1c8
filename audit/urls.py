"""The audit log, mounted at /o/<org>/audit/ (config/urls.py)."""

from django.urls import path

from audit import views

urlpatterns = [path("", views.audit_log, name="audit_log")]
