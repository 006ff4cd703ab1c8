"""The chat channels' reads: what a widget socket sends on `hello` and when it starts following
a conversation, as protocol frames (docs/chat-protocol.md)."""

from __future__ import annotations

from bots.models import Bot
from conversations import selectors
from conversations.models import Conversation
from conversations.payloads import conversation_payload, message_payload


def widget_ready(*, bot: Bot, conversation: Conversation | None, after_id: int) -> dict:
    """The `ready` frame: the conversation (None: none yet), its messages after `after_id`, and
    the bot's look. Reads the conversation afresh."""
    messages = []
    if conversation is not None:
        conversation.refresh_from_db()
        messages = selectors.messages_after(
            conversation=conversation, after_id=after_id, limit=selectors.MAX_MESSAGES
        )
    return {
        "type": "ready",
        "conversation": (
            conversation_payload(conversation, for_customer=True)
            if conversation is not None
            else None
        ),
        "messages": [message_payload(m) for m in messages],
        "bot": {
            "name": bot.name,
            "greeting": bot.greeting,
            "colour": bot.colour,
            "position": bot.widget_position,
        },
    }


def widget_catch_up(*, conversation: Conversation) -> list[dict]:
    """What the conversation's group sent before a socket joined it (the messages, then the
    conversation's status), in the order the group sends them. Reads the conversation afresh."""
    conversation.refresh_from_db()
    messages = selectors.messages_after(
        conversation=conversation, after_id=0, limit=selectors.MAX_MESSAGES
    )
    return [
        *({"type": "message.created", "message": message_payload(m)} for m in messages),
        {
            "type": "conversation.updated",
            "conversation": conversation_payload(conversation, for_customer=True),
        },
    ]
