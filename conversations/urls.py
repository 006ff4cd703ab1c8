from django.urls import path

from conversations import api

urlpatterns = [
    path("api/v1/chat", api.chat_send, name="api_chat"),
    path("api/v1/escalate", api.escalate, name="api_escalate"),
    path(
        "api/v1/conversations/<int:conversation_id>",
        api.conversation_detail,
        name="api_conversation",
    ),
    path("api/v1/feedback", api.feedback, name="api_feedback"),
]
