"""What analytics does when a floor below reports a change (conversations.events).
Connected in AnalyticsConfig.ready()."""

from __future__ import annotations

from analytics.live import now_html
from config import realtime
from conversations.models import Conversation


def now_refresh(sender, conversation: Conversation, moved: bool, **kwargs) -> None:
    """After commit, push the dashboard's "Now" tile to the organization, once however many
    changes the transaction made, the way the console's queue is pushed.

    Only when the conversation moved (asked for a person, taken by an agent, back to the bot,
    ended): what the tile counts live, the queue and its longest wait, changes only then. A
    bot's answer or a message that leaves the conversation where it was changes none of it
    (most writes: bots talk a lot). What changes without a move, agents going online and a
    new chat's first message joining "with the bot", the page re-reads every 30 s. Playground
    tests are counted nowhere, so they push nothing."""
    if not moved or conversation.channel == Conversation.Channel.PLAYGROUND:
        return
    organization_id = conversation.bot.organization_id
    realtime.broadcast_on_commit(
        realtime.organization_group(organization_id),
        "analytics.now",
        lambda: {"html": now_html(organization_id=organization_id)},
        once=True,
    )
