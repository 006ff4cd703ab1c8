from django.apps import AppConfig

from escalation.events import agent_acted


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # Imported here: the receivers import models, loaded only after every AppConfig exists.
        from audit import receivers

        agent_acted.connect(receivers.console_action_record, dispatch_uid="audit.console")
