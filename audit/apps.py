from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        # Imported here: the receivers import models, loaded only after every AppConfig exists.
        from audit import receivers
        from escalation.events import agent_acted

        agent_acted.connect(receivers.console_action_record, dispatch_uid="audit.console")
