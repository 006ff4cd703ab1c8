"""What conversations tell the floors above it, which it never imports (apps import only the
floors below them): Django signals they connect to in their AppConfig.ready().

Sent inside the transaction that made the change, before it commits: a receiver that pushes
or enqueues does it on commit (config.realtime.broadcast_on_commit), and one that writes
writes in the same transaction.
"""

from django.dispatch import Signal

conversation_changed = Signal()
"""A conversation was created or changed (status, who has it, priority, queue, a message, the
unread mark). Arguments: `conversation` (as written, not yet committed) and `moved` (its status
changed in this write: true also when it went back to the bot). The console's queue listens
(escalation.receivers)."""
