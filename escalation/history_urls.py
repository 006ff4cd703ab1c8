"""Conversation history, mounted at /o/<org>/ (config/urls.py)."""

from django.urls import path

from escalation import history

urlpatterns = [
    path("conversations/", history.conversation_list, name="history"),
    path(
        "conversations/<int:conversation_id>/",
        history.conversation_detail,
        name="history_conversation",
    ),
    path("customers/<int:customer_id>/", history.customer_detail, name="history_customer"),
]
