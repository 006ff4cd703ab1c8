"""What escalation tells the floors above it, which it never imports: Django signals they
connect to in their AppConfig.ready()."""

from django.dispatch import Signal

agent_acted = Signal()
"""An agent did something to a conversation in the console (escalation.services.console_act),
sent inside the action's transaction after it succeeded. Arguments: `action` (the service's
name, e.g. "conversation_resolve"), `conversation` (as the action left it), `agent`, `before`
(escalation.services.conversation_state before the action), `result` (what the action returned:
the conversation, or the message it wrote). The audit log listens (audit.receivers)."""
