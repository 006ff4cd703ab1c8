"""What goes over the wire about messages and conversations: JSON-safe dicts.

The conversation group (`conv.<id>`) reaches the customer's browser, so nothing here may carry
what only members should see: a message's trace (retrieved chunks, scores, prompts), or the
sentiment and handoff reason of a conversation. Members read those through selectors.
"""

from __future__ import annotations

from datetime import datetime

from config.links import safe_http_url
from conversations.models import Conversation, Message


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _citations(citations: object) -> list:
    # Rows written before knowledge kept only http(s) addresses may cite `javascript:` ones:
    # history stays as it was, and what leaves for a browser or an API client is a safe link.
    if not isinstance(citations, list):
        return []
    return [
        {**c, **{key: safe_http_url(c.get(key)) for key in ("url", "link") if key in c}}
        for c in citations
        if isinstance(c, dict)
    ]


def message_payload(message: Message) -> dict:
    agent_name = ""
    if message.sender == Message.Sender.AGENT and message.agent_id:
        agent_name = message.agent.display_name
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "sender": message.sender,
        "text": message.text,
        # Always false on the customer's channels, which never carry internal notes.
        "internal": message.internal,
        "state": message.state,
        "outcome": message.outcome,
        "confidence": message.confidence,
        "citations": _citations(message.citations),
        "extras": message.extras,
        "requires_followup": message.requires_followup,
        "client_message_id": message.client_message_id,
        "reply_to_id": message.reply_to_id,
        "agent_name": agent_name,
        "feedback": message.feedback,
        "confirmed": message.confirmed,
        "created_at": _iso(message.created_at),
    }


def conversation_payload(conversation: Conversation, *, for_customer: bool = False) -> dict:
    """The conversation as the console sees it, or (`for_customer`) as the widget may see it:
    status and who is helping, without the reason it was handed off or how it is ranked."""
    agent = conversation.assigned_agent
    payload = {
        "id": conversation.pk,
        "status": conversation.status,
        "status_label": conversation.get_status_display(),
        "assigned_agent": agent.display_name if agent else "",
        "resolution": conversation.resolution,
        "csat": conversation.csat,
        "created_at": _iso(conversation.created_at),
        "last_message_at": _iso(conversation.last_message_at),
    }
    if for_customer:
        return payload
    return {
        **payload,
        "bot_id": conversation.bot_id,
        "customer": str(conversation.customer),
        "priority": conversation.priority,
        "handoff_reason": conversation.handoff_reason,
        "handoff_at": _iso(conversation.handoff_at),
        "sentiment": conversation.sentiment,
        "resolved_at": _iso(conversation.resolved_at),
        "reopened_count": conversation.reopened_count,
    }
