"""What the audit log does when a floor below reports something (escalation.events).
Connected in AuditConfig.ready()."""

from __future__ import annotations

from audit.services import console_event_record


def console_action_record(sender, action, conversation, agent, before, result, **kwargs) -> None:
    console_event_record(
        action=action, conversation=conversation, agent=agent, before=before, result=result
    )
