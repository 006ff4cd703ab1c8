"""The agent console, mounted at /o/<org>/console/ (config/urls.py)."""

from django.urls import path

from escalation import views

urlpatterns = [
    path("", views.console, name="console"),
    path("availability/", views.availability, name="console_availability"),
    path("c/<int:conversation_id>/", views.console_conversation, name="console_conversation"),
    path("c/<int:conversation_id>/claim/", views.claim, name="console_claim"),
    path("c/<int:conversation_id>/take-over/", views.take_over, name="console_take_over"),
    path("c/<int:conversation_id>/transfer/", views.transfer, name="console_transfer"),
    path("c/<int:conversation_id>/resolve/", views.resolve, name="console_resolve"),
    path("c/<int:conversation_id>/return/", views.return_to_bot, name="console_return"),
    path("c/<int:conversation_id>/reply/", views.reply, name="console_reply"),
    path("c/<int:conversation_id>/note/", views.note, name="console_note"),
    path("c/<int:conversation_id>/seen/", views.seen, name="console_seen"),
    path("c/<int:conversation_id>/faq/", views.save_faq, name="console_save_faq"),
    path("c/<int:conversation_id>/suggest/", views.suggest, name="console_suggest"),
]
