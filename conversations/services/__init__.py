"""Writes for customers, conversations and messages. Each service owns its transaction.

The conversation row is the lock for everything that races in a chat: its status and who may
speak. The bot starts and finishes an answer only while holding it and only while the
conversation is `ai`, so once a person takes over (handoff, an agent's message) no bot text
reaches the customer. Events go out after commit (config.realtime.broadcast_on_commit), built
from the committed rows by conversations/payloads.py; floors above hear of changes through
conversations/events.py.

All errors a customer or agent can cause are ValueErrors with a sentence fit to show them:
a consumer may catch ValueError and send `str(exc)`.

What agents do in the console (claim, transfer, resolve…) is escalation's: escalation.services,
which moves conversations with the state machine here.
"""

from conversations.services.actions import (  # noqa: F401
    action_call_decide,
    action_calls_save,
    action_result_post,
)
from conversations.services.common import (  # noqa: F401
    HANDOFF_MESSAGE,
    OPEN_STATUSES,
    TRANSITIONS,
    ConversationStateError,
    CustomerIdentityError,
    MessageRejected,
)
from conversations.services.customers import (  # noqa: F401
    customer_identify,
    customer_leave_email,
    identity_signature,
)
from conversations.services.lifecycle import (  # noqa: F401
    conversation_handoff,
    conversation_rate,
    conversation_resume,
    conversation_set_priority,
    conversation_set_status,
    conversation_start,
    reopen_window_over,
)
from conversations.services.messages import (  # noqa: F401
    message_add_agent,
    message_add_first,
    message_add_system,
    message_add_user,
    message_check,
    message_complete,
    message_fail,
    message_feedback,
    message_start_bot,
    message_stream,
    messages_fail_stale,
)
from conversations.services.outcomes import (  # noqa: F401
    conversation_close_idle,
    conversation_resolve_by_customer,
    conversations_close_expired,
    conversations_close_idle,
    message_answer_rejected,
)
