"""The analytics dashboard, mounted at /o/<org>/analytics/ (config/urls.py)."""

from django.urls import path

from analytics import views

urlpatterns = [
    path("", views.analytics, name="analytics"),
    path("conversations/", views.analytics_conversations, name="analytics_conversations"),
    path("<slug:table>.csv", views.analytics_csv, name="analytics_csv"),
    path(
        "gaps/unsubscribe/<str:token>/",
        views.gaps_unsubscribe,
        name="analytics_gaps_unsubscribe",
    ),
]
