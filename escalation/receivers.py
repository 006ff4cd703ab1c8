"""What escalation does when a floor below reports a change (bots.events, conversations.events).
Connected in EscalationConfig.ready()."""

from __future__ import annotations

from config import realtime
from conversations.models import Conversation
from escalation.live import queue_html
from escalation.services import escalation_rules_create_defaults


def bot_default_rules(sender, bot, **kwargs) -> None:
    """Every new bot starts with the default escalation rules (escalation/defaults.py)."""
    escalation_rules_create_defaults(bot=bot)


def console_queue_refresh(sender, conversation: Conversation, moved: bool, **kwargs) -> None:
    """After commit, push the console's queue partial to the organization, rendered from
    committed data, once however many changes the transaction made (a take-over hands off,
    claims and posts in one).

    Only when the change can show in the queue: the conversation is with people (or resolved),
    or it just moved (back to the bot). A conversation that is and stays with the bot, answering
    or awaiting the customer (most messages: bots talk a lot), re-renders nothing."""
    if not moved and conversation.with_bot:
        return
    organization_id = conversation.bot.organization_id
    realtime.broadcast_on_commit(
        realtime.organization_group(organization_id),
        "console.queue",
        lambda: {"html": queue_html(organization_id=organization_id)},
        once=True,
    )
