"""The audit log's own writes: the events no trigger sees (an agent's console action, a key
shown). Row changes are recorded by pghistory's triggers (audit.models) and need no call."""

from __future__ import annotations

import pghistory
from pghistory import runtime

from audit.models import CONSOLE_ACTIONS, ConsoleEvent
from bots.models import Bot, User
from conversations.models import Conversation, Message
from escalation.services import conversation_state

# What of a reply or note the log keeps: enough to find it, not a second transcript.
EXCERPT_CHARS = 140


def _context() -> tuple[dict | None, object | None]:
    """The request's pghistory context (audit.middleware), as its triggers would store it."""
    tracker = getattr(runtime._tracker, "value", None)
    if tracker is None:
        return None, None
    return dict(tracker.metadata), tracker.id


def console_event_record(
    *, action: str, conversation: Conversation, agent: User, before: dict, result
) -> ConsoleEvent | None:
    """Record an agent's console action (escalation.events.agent_acted), in its transaction.
    A claim of one's own conversation again (a double click) changed nothing: not recorded."""
    label = CONSOLE_ACTIONS.get(action)
    if label is None:
        return None
    after = conversation_state(conversation)
    detail = {}
    if isinstance(result, Message):
        text = result.text
        detail = {
            "message": result.pk,
            "excerpt": text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…",
        }
    elif label in ("console.claim", "console.take_over") and before == after:
        return None
    context, context_id = _context()
    if context is None:
        # Not through a request (a shell, a test): still who did it, from nowhere known.
        context = {"user": agent.pk, "name": agent.display_name}
    return ConsoleEvent.objects.create(
        pgh_obj=conversation,
        pgh_label=label,
        pgh_context=context,
        pgh_context_id=context_id,
        pgh_previous=before,
        organization_id=conversation.bot.organization_id,
        detail=detail,
        bot_id=conversation.bot_id,
        assigned_agent_id=after.pop("assigned_agent"),
        **after,
    )


def secret_revealed_record(*, bot: Bot) -> None:
    """Someone was shown the bot's secret key (chat.views.secret_reveal): pghistory's manual
    event, with the request's context like every other event."""
    pghistory.create_event(bot, label="secret.revealed")
