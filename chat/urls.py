from django.urls import path

from chat import api, views

BOT = "o/<slug:org>/bots/<slug:bot>/"

urlpatterns = [
    path("widget.js", views.widget_js, name="widget_js"),
    path("widget/<str:public_key>/config.json", views.widget_config, name="widget_config"),
    path("widget/<str:public_key>/frame", views.widget_frame, name="widget_frame"),
    path("chat/<str:public_key>/", views.chat_page, name="chat_page"),
    path(BOT + "integrations/", views.integrations, name="bot_integrations"),
    path(BOT + "integrations/secret/", views.secret_reveal, name="bot_secret_reveal"),
    path(BOT + "integrations/secret/rotate/", views.secret_rotate, name="bot_secret_rotate"),
    path(BOT + "playground/", views.playground, name="bot_playground"),
    path(
        BOT + "playground/trace/<int:message_id>",
        views.playground_trace,
        name="bot_playground_trace",
    ),
    # The HTTP chat API, for a site's own server (authenticated by the bot's secret key).
    path("api/v1/chat", api.chat_send, name="api_chat"),
    path("api/v1/escalate", api.escalate, name="api_escalate"),
    path(
        "api/v1/conversations/<int:conversation_id>",
        api.conversation_detail,
        name="api_conversation",
    ),
    path("api/v1/feedback", api.feedback, name="api_feedback"),
    path("api/v1/confirm", api.confirm, name="api_confirm"),
    path("api/v1/actions/confirm", api.action_confirm, name="api_action_confirm"),
]
