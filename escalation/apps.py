from django.apps import AppConfig

from bots.events import bot_created
from conversations.events import conversation_changed


class EscalationConfig(AppConfig):
    name = "escalation"

    def ready(self) -> None:
        # Imported here, not at the top: the receivers import models, which the app registry
        # loads only after every AppConfig exists.
        from escalation import receivers

        bot_created.connect(receivers.bot_default_rules, dispatch_uid="escalation.default_rules")
        conversation_changed.connect(
            receivers.console_queue_refresh, dispatch_uid="escalation.console_queue"
        )
