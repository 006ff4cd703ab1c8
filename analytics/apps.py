from django.apps import AppConfig

from conversations.events import conversation_changed


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self) -> None:
        # Imported here, not at the top: the receivers import models, which the app registry
        # loads only after every AppConfig exists.
        from analytics import receivers

        conversation_changed.connect(receivers.now_refresh, dispatch_uid="analytics.now")
