"""What analytics does when a floor below reports a change (conversations.events).
Connected in AnalyticsConfig.ready()."""

from __future__ import annotations

from analytics.live import now_html
from config import realtime
from conversations.models import Conversation


def now_refresh(sender, conversation: Conversation, moved: bool, **kwargs) -> None:
    """After commit, push the dashboard's "Now" tile to the organization, once however many
    changes the transaction made, the way the console's queue is pushed.

    Only when a figure of the tile can change: the conversation moved (waiting, with an agent,
    back to the bot, ended) or was just started (one more with the bot; it has no message yet).
    A bot answering or a message in a conversation that stays where it is changes nothing
    there. Playground tests are counted nowhere, so they push nothing."""
    if conversation.channel == Conversation.Channel.PLAYGROUND:
        return
    started = conversation.last_message_at is None and conversation.status == Conversation.Status.AI
    if not (moved or started):
        return
    organization_id = conversation.bot.organization_id
    realtime.broadcast_on_commit(
        realtime.organization_group(organization_id),
        "analytics.now",
        lambda: {"html": now_html(organization_id=organization_id)},
        once=True,
    )
